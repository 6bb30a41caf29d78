"""The commands of ``rq-dabs``, one function each: config -> rq_dabs calls -> results.

Run plumbing (where the data live, which finished runs are reused, how results are written)
is rq-core's (:mod:`rq_core.runs`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rq_core.archives import ChecksumError
from rq_core.checkpoints import save_checkpoint
from rq_core.config import save_config
from rq_core.runs import (
    ResultsTable,
    Stage,
    StageChangedError,
    StageCheck,
    atomic_output,
    atomic_write,
    cache_root,
    process_rank,
    write_results,
)
from rq_core.sweep import SweepConfig, SweepPoint, run_sweep, sweep_points
from rq_core.training import TrainerConfig
from rq_core.uncertainty import Estimate, Statistic, bootstrap_estimate, compare_methods
from rq_dabs.algorithms import build_algorithm, canonical_name
from rq_dabs.data.catalog import DOMAINS, open_domain
from rq_dabs.data.embedded import build_embedded_domain
from rq_dabs.encoder import DomainAgnosticTransformer, TransformerConfig
from rq_dabs.evaluate import (
    TRANSFER_PROTOCOLS,
    TransferSettings,
    dabs_linear_transfer,
    extract_features,
    probe_linear_transfer,
    transfer_statistic,
)
from rq_dabs.learner import OptimizerConfig, load_encoder
from rq_dabs.pretrain import encoder_path
from rq_dabs.pretrain import pretrain as run_pretraining

log = logging.getLogger("rq_dabs_app")

PREDICTIONS = "predictions.npz"  # each transfer seed's test logits, beside the transfer's files

# What shapes a pretraining besides the model, optimizer, batch and algorithm options: the
# trainer keys that change the weights. Steps and epochs are its budget (more steps extend a
# finished run); logging, checkpoint cadence and the progress bar change nothing.
TRAINER_SETTINGS = (
    "seed", "precision", "deterministic", "accumulate_grad_batches", "gradient_clip_val",
    "devices", "num_nodes",
)  # fmt: skip
TRAINER_BUDGET = ("max_steps", "max_epochs")


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _data_root(cfg: DictConfig) -> Path:
    return (
        Path(cfg.data_root) if cfg.data_root else cache_root("dabs", override=cfg.cache_dir or None)
    )


def _setup(cfg: DictConfig) -> None:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.domain not in DOMAINS:
        raise SystemExit(f"rq-dabs: unknown domain {cfg.domain!r}; choose from {sorted(DOMAINS)}")


def _algorithm(cfg: DictConfig, name: str):
    options: dict[str, Any] = _plain(cfg[name]) if name in ("rq", "emix", "shed") else {}
    return build_algorithm(name, dim=cfg.model.dim, **options)


def pretrain_settings(cfg: DictConfig, domain: str, algorithm: str) -> dict[str, Any]:
    """Everything a pretraining's encoder depends on (the :class:`Stage` settings), under
    the config's own keys, so that a changed setting is named as the user writes it."""
    settings = {
        "domain": domain,
        "algorithm": algorithm,
        "model": _plain(cfg.model),
        "optim": _plain(cfg.optim),
        "batch_size": cfg.batch_size,
        "trainer": {key: _plain(cfg.trainer[key]) for key in TRAINER_SETTINGS},
    }
    if algorithm in ("rq", "emix", "shed"):  # the options of the algorithm that runs
        settings[algorithm] = _plain(cfg[algorithm])
    return settings


def _pretrain_stage(cfg: DictConfig, domain: str, algorithm: str, run_dir: Path) -> Stage:
    # The scratch baseline trains nothing: its encoder does not depend on a budget.
    budget = {} if algorithm == "random" else {k: cfg.trainer[k] for k in TRAINER_BUDGET}
    return Stage(run_dir, pretrain_settings(cfg, domain, algorithm), budget=budget)


def _pretrain_one(
    cfg: DictConfig, domain: str, algorithm: str, run_dir: Path, *, on_change: str
) -> tuple[Path, StageCheck]:
    """Pretrain (or reuse) one encoder in ``run_dir``; return its file and the stage check."""
    stage = _pretrain_stage(cfg, domain, algorithm, run_dir)
    if process_rank() == 0:
        check = stage.prepare(force=cfg.force, on_change=on_change)  # type: ignore[arg-type]
    else:  # rank 0 alone moves a superseded run aside and writes the record
        check = stage.check(force=cfg.force)
        if check.state == "changed" and on_change == "refuse":  # rank 0 refuses too: stop
            raise StageChangedError(f"{run_dir}: settings changed ({', '.join(check.changed)})")
    target = encoder_path(run_dir)
    if check.reusable and target.is_file():
        log.info("%s: finished with these settings; reused", target)
        return target, check
    train_set = open_domain(domain, "train", _data_root(cfg))
    torch.manual_seed(cfg.trainer.seed)  # same initial encoder for every algorithm
    model = DomainAgnosticTransformer(train_set.spec(), TransformerConfig(**_plain(cfg.model)))
    run_cfg = OmegaConf.merge(
        cfg, {"domain": domain, "algorithm": algorithm, "run_dir": str(run_dir)}
    )
    path = run_pretraining(
        train_set,
        model,
        _algorithm(cfg, algorithm),
        run_dir,
        TrainerConfig(**_plain(cfg.trainer)),
        batch_size=cfg.batch_size,
        optimizer=OptimizerConfig(**_plain(cfg.optim)),
        num_workers=cfg.num_workers,
        config=run_cfg,
    )
    if path is None:
        raise SystemExit(
            f"rq-dabs: the pretraining in {run_dir} stopped early; run again to resume"
        )
    if process_rank() == 0:
        stage.finish(encoder=str(path))
    return path, check


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain the DABS encoder on `domain` with `algorithm` (rq, emix, shed, random)."""
    _setup(cfg)
    # A run_dir made with other settings is refused (one line); force=true moves it aside.
    algorithm = canonical_name(cfg.algorithm)
    path, _ = _pretrain_one(cfg, cfg.domain, algorithm, Path(cfg.run_dir), on_change="refuse")
    print(f"encoder: {path}")
    return path


def _transfer_one(
    cfg: DictConfig, domain: str, encoder_file: Path, run_dir: Path
) -> dict[str, Any]:
    """Frozen features of ``encoder_file`` on the three splits, then the linear protocol."""
    if cfg.transfer.protocol not in TRANSFER_PROTOCOLS:
        raise SystemExit(f"rq-dabs: transfer.protocol must be one of {TRANSFER_PROTOCOLS}")
    info = DOMAINS[domain]
    model = load_encoder(encoder_file)
    splits = {s: open_domain(domain, s, _data_root(cfg)) for s in ("train", "valid", "test")}
    if list(model.specs) != list(splits["train"].spec()):
        raise SystemExit(
            f"rq-dabs transfer: the encoder was pretrained for inputs {model.specs}, but domain "
            f"{domain!r} gives {splits['train'].spec()}; transfer needs the same input specs "
            "(e.g. cifar10_small -> dtd_small, imagenet -> dtd, wikitext103 -> sst2, "
            "librispeech -> audio_mnist, chexpert -> xray8)"
        )
    features = {
        s: extract_features(model, d, num_workers=cfg.num_workers) for s, d in splits.items()
    }
    seeds = list(cfg.transfer.seeds)
    labels = features["test"][1].numpy()
    if cfg.transfer.protocol == "linear_probe":
        result = probe_linear_transfer(
            features["train"], features["valid"], features["test"],
            multilabel=splits["train"].multilabel(), seeds=tuple(seeds),
        )  # fmt: skip
        predictions = result.pop("predictions")
        if predictions.multilabel:
            outputs = predictions.scores
        else:  # the probe's argmax classes, one-hot: transfer_statistic takes their argmax
            outputs = np.eye(len(predictions.classes))[predictions.predicted]
            labels = predictions.targets
    else:
        settings = {k: v for k, v in _plain(cfg.transfer).items() if k != "protocol"}
        heads: list = []
        test_outputs: list = []
        result = dabs_linear_transfer(
            features["train"],
            features["test"],
            num_outputs=splits["train"].num_classes() or 1,
            loss=info.loss,
            metric=info.metric,
            settings=TransferSettings(**settings),
            heads=heads,
            test_outputs=test_outputs,
        )
        heads_file = run_dir / "checkpoints" / "linear_heads.pt"
        save_checkpoint(heads_file, {"seeds": seeds, "heads": heads})
        outputs = torch.stack(test_outputs).numpy()
    # Each seed's test logits (S, N, K): the intervals and paired comparisons of the results.
    with atomic_output(run_dir / PREDICTIONS, suffix=".npz") as tmp:
        np.savez_compressed(tmp, outputs=outputs, labels=labels)
    return result


def _statistic(metric: str, run_dir: Path) -> Statistic | None:
    with np.load(run_dir / PREDICTIONS) as saved:
        return transfer_statistic(metric, saved["outputs"], saved["labels"])


def _resolve_encoder(checkpoint: str) -> Path:
    if not checkpoint:
        raise SystemExit(
            "rq-dabs transfer: set checkpoint=PATH (an encoder.pt or a pretraining run dir)"
        )
    path = Path(checkpoint)
    if path.is_dir():
        path = encoder_path(path)
    if not path.is_file():
        raise SystemExit(f"rq-dabs transfer: no encoder at {path}")
    return path


def results_tables(
    results: dict[str, dict[str, dict[str, Any]]], transfer_dirs: dict[str, dict[str, Path]]
) -> list[ResultsTable]:
    """The method x domain table with 95 % bootstrap intervals over test items and transfer
    seeds, and each method against random init and e-Mix, paired on the same test items
    (:func:`rq_core.uncertainty.compare_methods`); correlation metrics (no per-item
    intervals) get a mean ± std table of their own."""
    statistics: dict[str, dict[str, Statistic]] = {}
    plain = ResultsTable("Correlation metrics (mean ± std over transfer seeds)", ["method"])
    for domain, by_method in results.items():
        metric = next(iter(by_method.values()))["metric"]
        column = f"{domain} ({metric})"
        for method, r in by_method.items():
            statistic = _statistic(metric, transfer_dirs[domain][method])
            if statistic is not None:
                statistics.setdefault(method, {})[column] = statistic
                continue
            if column not in plain.columns:
                plain.columns.append(column)
            row = next((row for row in plain.rows if row["method"] == method), None)
            if row is None:
                row = {"method": method}
                plain.rows.append(row)
            mean, std = 100 * r[f"{metric}_mean"], 100 * r[f"{metric}_std"]
            row[column] = f"{mean:.1f} ± {std:.1f}"
    tables = []
    if statistics:
        tables += compare_methods(
            "Linear transfer on the test split (%)", statistics, reference="random",
            baseline="emix",
        )  # fmt: skip
    return tables + ([plain] if plain.rows else [])


def _write_results(
    run_dir: Path,
    results: dict[str, dict[str, dict[str, Any]]],
    transfer_dirs: dict[str, dict[str, Path]],
) -> None:
    """``results.json`` + ``results.md`` (the tables) and ``metrics.csv`` (one row per
    domain and method: metric, mean, std over the transfer seeds)."""
    tables = results_tables(results, transfer_dirs)
    write_results(run_dir, tables, {"results": results}, title="DABS transfer results")
    rows = ["domain,method,metric,mean,std"]
    for domain, by_algorithm in results.items():
        for algorithm, r in by_algorithm.items():
            m = r["metric"]
            rows.append(f"{domain},{algorithm},{m},{r[f'{m}_mean']},{r[f'{m}_std']}")
    atomic_write(run_dir / "metrics.csv", "\n".join(rows) + "\n")
    for table in tables:
        print(table.markdown(level=2))


def _method_of(encoder_file: Path, algorithm: str) -> str:
    """The method that made ``encoder_file``: what its pretraining recorded (RUN_DIR/stage.json
    beside RUN_DIR/checkpoints/encoder.pt), else ``algorithm`` as configured."""
    record = Stage(encoder_file.parent.parent, {}).read() or {}
    recorded = (record.get("settings") or {}).get("algorithm")
    return canonical_name(recorded if isinstance(recorded, str) else algorithm)


def transfer(cfg: DictConfig) -> dict[str, Any]:
    """Linear transfer of a frozen pretrained encoder (checkpoint=...) on `domain`."""
    _setup(cfg)
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    encoder_file = _resolve_encoder(cfg.checkpoint)
    result = _transfer_one(cfg, cfg.domain, encoder_file, run_dir)
    result["encoder"] = str(encoder_file)
    method = _method_of(encoder_file, cfg.algorithm)  # the row: a method, never a file name
    results = {cfg.domain: {method: result}}
    _write_results(run_dir, results, {cfg.domain: {method: run_dir}})
    return results


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


def _build_domains(cfg: DictConfig) -> None:
    """Every domain is built (or found) before any training: one that cannot be built stops
    the demo at once with its reason, so the results always cover every requested domain."""
    for domain in cfg.demo.domains:
        if domain not in DOMAINS or not DOMAINS[domain].embedded:
            raise SystemExit(f"rq-dabs demo: {domain!r} is not an embedded domain")
        try:
            build_embedded_domain(domain, _data_root(cfg))
        except (OSError, ImportError, RuntimeError, ValueError) as error:
            raise SystemExit(f"rq-dabs demo: domain {domain!r} cannot be built: {error}") from None


def _demo_stage(cfg: DictConfig, domain: str, algorithm: str, stage_dir: Path) -> dict[str, Any]:
    """Pretrain (or reuse) one encoder, then transfer (or reuse the transfer made from it)."""
    t0, c0 = time.time(), time.process_time()
    encoder_file, check = _pretrain_one(cfg, domain, algorithm, stage_dir, on_change="supersede")
    t1, c1 = time.time(), time.process_time()
    settings = {
        "pretrain": _pretrain_stage(cfg, domain, algorithm, stage_dir).settings,
        "budget": _pretrain_stage(cfg, domain, algorithm, stage_dir).budget,
        "transfer": _plain(cfg.transfer),
    }
    transfer_stage = Stage(stage_dir / "transfer", settings)
    if transfer_stage.prepare(force=cfg.force, on_change="supersede").reusable:
        print(f"[demo] {domain}/{algorithm}: reused {transfer_stage.path}")
        return transfer_stage.outputs()
    result = _transfer_one(cfg, domain, encoder_file, transfer_stage.directory)
    # Wall time depends on the machine's load; CPU time (all threads) much less.
    if not check.reusable:
        result["pretrain_seconds"] = round(t1 - t0, 1)
        result["pretrain_cpu_seconds"] = round(c1 - c0, 1)
    result["transfer_seconds"] = round(time.time() - t1, 1)
    result["transfer_cpu_seconds"] = round(time.process_time() - c1, 1)
    transfer_stage.finish(**result)
    m = result["metric"]
    print(
        f"[demo] {domain}/{algorithm}: {m} {100 * result[f'{m}_mean']:.1f} "
        f"(pretrain {t1 - t0:.0f} s wall / {c1 - c0:.0f} s CPU, "
        f"transfer {time.time() - t1:.0f} s)",
        flush=True,
    )
    return result


def demo(cfg: DictConfig) -> dict[str, Any]:
    """Pretrain rq, emix and random init on each embedded domain; print the transfer tables."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    started = time.time()
    _build_domains(cfg)
    results: dict[str, dict[str, Any]] = {}
    transfer_dirs: dict[str, dict[str, Path]] = {}
    methods = [canonical_name(a) for a in cfg.demo.algorithms]
    for domain in cfg.demo.domains:
        stage_dirs = {method: run_dir / domain / method for method in methods}
        results[domain] = {m: _demo_stage(cfg, domain, m, d) for m, d in stage_dirs.items()}
        transfer_dirs[domain] = {m: d / "transfer" for m, d in stage_dirs.items()}
    _write_results(run_dir, results, transfer_dirs)
    print(f"[demo] {time.time() - started:.0f} s; results in {run_dir / 'results.md'}")
    return results


def _estimate(metric: str, transfer_dir: Path) -> Estimate:
    statistic = _statistic(metric, transfer_dir)
    if statistic is None:
        raise SystemExit(f"rq-dabs sweep: {metric} has no per-item interval; sweep a domain scored "
                         "by accuracy or AUROC")  # fmt: skip
    return bootstrap_estimate(statistic).scaled(100.0)


def sweep(cfg: DictConfig) -> list[ResultsTable]:
    """RQ pretraining + transfer at every sweep.bins x sweep.spacing x sweep.collapse point on
    each of demo.domains; random init and e-Mix as bands (table, plot)."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    try:
        points = sweep_points(SweepConfig(**_plain(cfg.sweep)))
    except ValueError as error:
        raise SystemExit(f"rq-dabs sweep: {error}") from None
    _build_domains(cfg)
    columns = {d: f"{d} ({DOMAINS[d].metric})" for d in cfg.demo.domains}

    def run_point(point: SweepPoint, point_dir: Path) -> dict[str, Estimate]:
        quantizer = {"num_bins": point.num_bins, "spacing": point.spacing,
                     "collapse": point.collapse}  # fmt: skip
        point_cfg = OmegaConf.merge(cfg, {"rq": quantizer})
        estimates = {}
        for domain, column in columns.items():
            _demo_stage(point_cfg, domain, "rq", point_dir / domain)
            estimates[column] = _estimate(DOMAINS[domain].metric, point_dir / domain / "transfer")
        return estimates

    bands: dict[str, dict[str, Estimate]] = {}
    for method in ("random", "emix"):  # the references, made once and reused like the demo's
        for domain, column in columns.items():
            stage_dir = run_dir / "references" / domain / method
            _demo_stage(cfg, domain, method, stage_dir)
            bands.setdefault(method, {})[column] = _estimate(
                DOMAINS[domain].metric, stage_dir / "transfer"
            )
    # What shapes every point besides its quantizer (each point's own stages check the rest).
    settings = {
        "domains": list(cfg.demo.domains),
        "rq": {
            k: v for k, v in _plain(cfg.rq).items() if k not in ("num_bins", "spacing", "collapse")
        },
        **{
            k: v
            for k, v in pretrain_settings(cfg, "", "random").items()
            if k not in ("domain", "algorithm")
        },
        "budget": {k: cfg.trainer[k] for k in TRAINER_BUDGET},
        "transfer": _plain(cfg.transfer),
    }
    tables = run_sweep(
        points, run_point, run_dir=run_dir, settings=settings, force=cfg.force, bands=bands,
        title="RQ sweep: linear transfer on the test split (%)",
    )  # fmt: skip
    for table in tables:
        print(table.markdown(level=2))
    print(f"[sweep] results in {run_dir / 'results.md'}, plot {run_dir / 'sweep.png'}")
    return tables
