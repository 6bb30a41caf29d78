"""The commands of ``rq-dabs``: config -> rq_dabs objects -> run. Nothing reusable lives here."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rq_core.archives import ChecksumError
from rq_core.config import save_config
from rq_core.training import TrainerConfig
from rq_dabs.algorithms import build_algorithm
from rq_dabs.data.catalog import DOMAINS, open_domain
from rq_dabs.data.embedded import build_embedded_domain, cache_root
from rq_dabs.pretrain import encoder_path
from rq_dabs.pretrain import pretrain as run_pretraining
from rq_dabs.learner import OptimizerConfig, load_encoder
from rq_dabs.evaluate import (
    TRANSFER_PROTOCOLS,
    TransferSettings,
    dabs_linear_transfer,
    extract_features,
    probe_linear_transfer,
    results_markdown,
    write_results,
)
from rq_dabs.encoder import DomainAgnosticTransformer, TransformerConfig

log = logging.getLogger("rq_dabs_app")


def _setup(cfg: DictConfig) -> None:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.domain not in DOMAINS:
        raise SystemExit(f"rq-dabs: unknown domain {cfg.domain!r}; choose from {sorted(DOMAINS)}")


def _algorithm(cfg: DictConfig, name: str):
    options: dict[str, Any] = {}
    if name in ("rq", "emix", "shed"):
        options = OmegaConf.to_container(cfg[name])  # type: ignore[assignment]
    return build_algorithm(name, dim=cfg.model.dim, **options)


def _trainer(cfg: DictConfig) -> TrainerConfig:
    return TrainerConfig(**OmegaConf.to_container(cfg.trainer))  # type: ignore[arg-type]


def _pretrain_one(cfg: DictConfig, domain: str, algorithm: str, run_dir: Path) -> Path:
    train_set = open_domain(domain, "train", cfg.data_root or None)
    torch.manual_seed(cfg.trainer.seed)  # same initial encoder for every algorithm
    model = DomainAgnosticTransformer(
        train_set.spec(), TransformerConfig(**OmegaConf.to_container(cfg.model))  # type: ignore[arg-type]
    )
    run_cfg = OmegaConf.merge(cfg, {"domain": domain, "algorithm": algorithm, "run_dir": str(run_dir)})
    return run_pretraining(
        train_set,
        model,
        _algorithm(cfg, algorithm),
        run_dir,
        _trainer(cfg),
        batch_size=cfg.batch_size,
        optimizer=OptimizerConfig(cfg.optim.lr, cfg.optim.weight_decay),
        num_workers=cfg.num_workers,
        config=run_cfg,
    )


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain the DABS encoder on `domain` with `algorithm` (rq, emix, shed, none)."""
    _setup(cfg)
    path = _pretrain_one(cfg, cfg.domain, cfg.algorithm, Path(cfg.run_dir))
    print(f"encoder: {path}")
    return path


def _transfer_one(cfg: DictConfig, domain: str, encoder_file: Path, run_dir: Path) -> dict[str, Any]:
    if cfg.transfer.protocol not in TRANSFER_PROTOCOLS:
        raise SystemExit(f"rq-dabs: transfer.protocol must be one of {TRANSFER_PROTOCOLS}")
    info = DOMAINS[domain]
    model = load_encoder(encoder_file)
    splits = {s: open_domain(domain, s, cfg.data_root or None) for s in ("train", "valid", "test")}
    if list(model.specs) != list(splits["train"].spec()):
        raise SystemExit(
            f"rq-dabs transfer: the encoder was pretrained for inputs {model.specs}, but domain {domain!r} "
            f"gives {splits['train'].spec()}; transfer needs the same input specs (e.g. cifar10_small -> "
            "dtd_small, imagenet -> dtd, wikitext103 -> sst2, librispeech -> audio_mnist, chexpert -> xray8)"
        )
    features = {s: extract_features(model, d, num_workers=cfg.num_workers) for s, d in splits.items()}
    if cfg.transfer.protocol == "linear_probe":
        result = probe_linear_transfer(
            features["train"], features["valid"], features["test"],
            multilabel=splits["train"].multilabel(), seeds=tuple(cfg.transfer.seeds),
        )
    else:
        num_classes = splits["train"].num_classes()
        heads: list = []
        result = dabs_linear_transfer(
            features["train"],
            features["test"],
            num_outputs=num_classes or 1,
            loss=info.loss,
            metric=info.metric,
            settings=TransferSettings(
                epochs=cfg.transfer.epochs,
                lr=cfg.transfer.lr,
                weight_decay=cfg.transfer.weight_decay,
                batch_size=cfg.transfer.batch_size,
                seeds=tuple(cfg.transfer.seeds),
                standardize=cfg.transfer.standardize,
            ),
            heads=heads,
        )
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        torch.save({"seeds": list(cfg.transfer.seeds), "heads": heads}, run_dir / "checkpoints" / "linear_heads.pt")
    result["encoder"] = str(encoder_file)
    return result


def _resolve_encoder(checkpoint: str) -> Path:
    if not checkpoint:
        raise SystemExit("rq-dabs transfer: set checkpoint=PATH (an encoder.pt or a pretraining run dir)")
    path = Path(checkpoint)
    if path.is_dir():
        path = encoder_path(path)
    if not path.is_file():
        raise SystemExit(f"rq-dabs transfer: no encoder at {path}")
    return path


def transfer(cfg: DictConfig) -> dict[str, Any]:
    """Linear transfer of a frozen pretrained encoder (checkpoint=...) on `domain`."""
    _setup(cfg)
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    result = _transfer_one(cfg, cfg.domain, _resolve_encoder(cfg.checkpoint), run_dir)
    results = {cfg.domain: {cfg.algorithm: result}}
    _write_run_outputs(run_dir, results)
    print(results_markdown(results))
    return results


def _write_run_outputs(run_dir: Path, results: dict[str, dict[str, dict[str, Any]]]) -> None:
    write_results(results, run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["domain", "algorithm", "metric", "mean", "std"])
        for domain, by_algorithm in results.items():
            for algorithm, r in by_algorithm.items():
                m = r["metric"]
                writer.writerow([domain, algorithm, m, r[f"{m}_mean"], r[f"{m}_std"]])


def _stage_fingerprint(cfg: DictConfig, domain: str, algorithm: str) -> str:
    """What a demo stage's result depends on; a stage made with other settings is redone."""
    import hashlib

    keep = {k: cfg[k] for k in ("batch_size", "model", "optim", "transfer", "trainer")}
    keep.update(domain=domain, algorithm=algorithm, options=cfg[algorithm] if algorithm in cfg else None)
    text = json.dumps(OmegaConf.to_container(OmegaConf.create(keep), resolve=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fetch_assets(cfg: DictConfig) -> list[Path]:
    """Fetch the demo's pinned data files once (needs network), verified by SHA-256."""
    from urllib.error import URLError

    from rq_dabs.data.assets import fetch_assets as fetch

    try:
        paths = fetch(cfg.assets or None, wheel=cfg.wheel or None)
    except (ChecksumError, URLError, OSError) as error:
        raise SystemExit(f"rq-dabs fetch-assets: {error}") from None
    for path in paths:
        print(f"asset {path}: verified")
    return paths


def demo(cfg: DictConfig) -> dict[str, Any]:
    """Pretrain rq, emix and none on each embedded domain and print the transfer table."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    data_root = Path(cfg.data_root) if cfg.data_root else cache_root()
    results: dict[str, dict[str, Any]] = {}
    started = time.time()
    # Every domain is built (or found) before any training: one that cannot be built stops the
    # demo at once with its reason, so the results always cover every requested domain.
    for domain in cfg.demo.domains:
        if domain not in DOMAINS or not DOMAINS[domain].embedded:
            raise SystemExit(f"rq-dabs demo: {domain!r} is not an embedded domain")
        try:
            build_embedded_domain(domain, data_root)
        except (OSError, ImportError, RuntimeError, ValueError) as error:
            raise SystemExit(f"rq-dabs demo: domain {domain!r} cannot be built: {error}") from None
    for domain in cfg.demo.domains:
        results[domain] = {}
        for algorithm in cfg.demo.algorithms:
            stage = run_dir / domain / algorithm
            done = stage / "transfer.json"
            fingerprint = _stage_fingerprint(cfg, domain, algorithm)
            if done.is_file():
                previous = json.loads(done.read_text())
                if previous.get("fingerprint") == fingerprint:
                    results[domain][algorithm] = previous
                    print(f"[demo] {domain}/{algorithm}: reused {done}")
                    continue
                print(f"[demo] {domain}/{algorithm}: settings changed since {done} was made; redoing it")
                shutil.rmtree(stage)
            t0, c0 = time.time(), time.process_time()
            encoder_file = _pretrain_one(cfg, domain, algorithm, stage)
            t1, c1 = time.time(), time.process_time()
            result = _transfer_one(cfg, domain, encoder_file, stage)
            # Wall time depends on the machine's load; CPU time (all threads) much less.
            result["pretrain_seconds"] = round(t1 - t0, 1)
            result["pretrain_cpu_seconds"] = round(c1 - c0, 1)
            result["transfer_seconds"] = round(time.time() - t1, 1)
            result["transfer_cpu_seconds"] = round(time.process_time() - c1, 1)
            result["fingerprint"] = fingerprint
            done.write_text(json.dumps(result, indent=2) + "\n")
            results[domain][algorithm] = result
            m = result["metric"]
            print(
                f"[demo] {domain}/{algorithm}: {m} {100 * result[f'{m}_mean']:.1f} "
                f"(pretrain {t1 - t0:.0f} s wall / {c1 - c0:.0f} s CPU, transfer {time.time() - t1:.0f} s)",
                flush=True,
            )
    _write_run_outputs(run_dir, results)
    print(results_markdown(results))
    print(f"[demo] {time.time() - started:.0f} s; results in {run_dir / 'results.md'}")
    return results
