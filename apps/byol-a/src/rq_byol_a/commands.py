"""The ``rq-byol-a`` commands: config -> rq_audio calls. Nothing reusable lives here."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rq_audio.data.hdf5_cache import prepare_audio_cache
from rq_audio.evaluate import (
    embed_cache,
    evaluate_task,
    load_encoder,
    random_encoder,
    results_markdown,
)
from rq_audio.learner import BYOLA
from rq_audio.pretrain import ENCODER_FILE
from rq_audio.pretrain import pretrain as fit_byol_a
from rq_core.config import save_config
from rq_core.linear_probe import ProbeSettings

log = logging.getLogger("rq_byol_a")


def _log_mel_kwargs(cfg: DictConfig) -> dict[str, Any]:
    a = cfg.audio
    return dict(sample_rate=a.sample_rate, n_fft=a.n_fft, win_length=a.win_length, hop_length=a.hop_length,
                f_min=a.f_min, f_max=a.f_max, backend=a.backend, filterbank=a.filterbank)


def _ensure_cache(cfg: DictConfig, source: DictConfig) -> Path:
    """The source's HDF5 cache, prepared from its folder first if it does not exist."""
    if not source.cache:
        raise ValueError("a data source has no cache path: set its `cache` (e.g. data.pretrain.cache=...)")
    cache = Path(source.cache).expanduser()
    if cache.is_file():
        return cache
    if not source.audio_dir:
        raise FileNotFoundError(f"cache {cache} does not exist and no audio_dir is given to make it from")
    if int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun only rank 0 writes the cache; the others wait for it to appear.
        deadline = time.monotonic() + 24 * 3600
        while not cache.is_file():
            if time.monotonic() > deadline:
                raise TimeoutError(f"rank {os.environ['RANK']}: {cache} never appeared")
            time.sleep(1.0)
        return cache
    summary = prepare_audio_cache(
        Path(source.audio_dir).expanduser(), cache,
        metadata=Path(source.metadata).expanduser() if source.metadata else None,
        sample_rate=cfg.audio.sample_rate, max_seconds=source.max_seconds,
        min_seconds=cfg.prepare.min_seconds, max_failure_fraction=cfg.prepare.max_failure_fraction,
        num_threads=cfg.prepare.num_threads,
    )
    listed = f" (listed in {summary.skipped_csv})" if summary.num_skipped else ""
    print(f"prepared {cache}: {summary.num_written} clips, "
          f"{summary.num_skipped} files skipped{listed}")
    return cache


def _write_metrics(run_dir: Path, name: str, text: str) -> None:
    """Write ``name``; also ``metrics.csv`` unless the run dir has one (a pretraining's log)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / name).write_text(text)
    if not (run_dir / "metrics.csv").exists():
        (run_dir / "metrics.csv").write_text(text)


def prepare(cfg: DictConfig) -> list[Path]:
    """Make the HDF5 caches of the pretraining folder and every task that lacks one."""
    sources = []
    if cfg.data.pretrain.cache:
        sources.append(cfg.data.pretrain)
    sources += list(cfg.evaluate.tasks)
    if not sources:
        raise ValueError("nothing to prepare: set data.pretrain.{audio_dir,cache} or evaluate.tasks")
    return [_ensure_cache(cfg, s) for s in sources]


def build_module(cfg: DictConfig, augmentations: list[Any] | None = None) -> BYOLA:
    m = cfg.model
    chain = OmegaConf.to_container(cfg.augmentations if augmentations is None else augmentations, resolve=True)
    return BYOLA(
        n_mels=cfg.audio.n_mels, feature_dim=m.feature_dim, projection_hidden_dim=m.projection_hidden_dim,
        projection_dim=m.projection_dim, ema_decay=m.ema_decay, lr=m.lr, augmentations=chain,
        log_mel=_log_mel_kwargs(cfg), encoder_channels=m.encoder_channels,
    )


SETTINGS_FILE = "pretrain_settings.json"
# Config keys that do not change what a pretraining learns (logging, checkpoint cadence, loaders).
_NEUTRAL_KEYS = {
    "data": {"num_workers"},
    "trainer": {"log_every_n_steps", "checkpoint_every_n_steps", "tensorboard", "progress_bar", "resume"},
}
# The training budget: a larger one continues a run from its last checkpoint.
_BUDGET_KEYS = ("max_steps", "max_epochs")


def _pretrain_settings(cfg: DictConfig, augmentations: list[Any] | None) -> dict[str, Any]:
    """Everything in the config that shapes a pretraining's result: ``settings`` and ``budget``."""
    c = OmegaConf.to_container(cfg, resolve=True)
    chain = augmentations if augmentations is not None else c.get("augmentations")
    if not isinstance(chain, list):
        chain = OmegaConf.to_container(chain, resolve=True)
    settings = {"audio": c.get("audio"), "model": c.get("model"), "augmentations": chain}
    neutral = dict(_NEUTRAL_KEYS, trainer=_NEUTRAL_KEYS["trainer"] | set(_BUDGET_KEYS))
    for section, keys in neutral.items():
        settings[section] = {k: v for k, v in (c.get(section) or {}).items() if k not in keys}
    budget = {k: (c.get("trainer") or {}).get(k) for k in _BUDGET_KEYS}
    return json.loads(json.dumps({"settings": settings, "budget": budget}))


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}")
    return keys


def _finished_before(run_dir: Path, record: dict[str, Any], supersede: bool) -> bool:
    """Whether ``run_dir`` already holds this pretraining, finished. A run made with other
    settings is never reused: ``supersede`` moves it aside (the demo, which also wants an exact
    budget), else it is an error. Same settings with another budget continue from the last
    checkpoint (a preempted or extended run)."""
    encoder = run_dir / "checkpoints" / ENCODER_FILE
    if not (encoder.is_file() or (run_dir / "checkpoints" / "last.ckpt").is_file()):
        return False
    saved = run_dir / SETTINGS_FILE
    previous = json.loads(saved.read_text()) if saved.is_file() else None
    if previous is not None and previous.get("settings") == record["settings"]:
        if previous.get("budget") == record["budget"]:
            return encoder.is_file()
        if not supersede:
            return False
    what = (f"settings changed ({', '.join(_changed_keys(previous, record)[:6])})" if previous
            else f"no {SETTINGS_FILE} says how it was made")
    if not supersede:
        raise ValueError(f"{run_dir} holds a pretraining made with other settings: {what}; "
                         "use another run_dir, or move that one away to train again")
    aside = run_dir.with_name(f"{run_dir.name}.superseded-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.rename(aside)
    print(f"[pretrain] {run_dir}: {what}; the old run is kept at {aside}, training anew")
    return False


def _pretrain(
    cfg: DictConfig, run_dir: Path, augmentations: list[Any] | None = None, *, supersede: bool = False
) -> Path:
    record = _pretrain_settings(cfg, augmentations)
    encoder_path = run_dir / "checkpoints" / ENCODER_FILE
    if _finished_before(run_dir, record, supersede):
        print(f"[pretrain] {encoder_path} exists: skipping (delete it to train again)")
        return encoder_path
    if int(os.environ.get("RANK", "0")) == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / SETTINGS_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))
    cache = _ensure_cache(cfg, cfg.data.pretrain)
    # The initial weights come from the run's seed, not from whatever the process drew before
    # (building caches, an earlier method in the demo): the same settings give the same run.
    torch.manual_seed(cfg.trainer.seed)
    module = build_module(cfg, augmentations)
    run_cfg = cfg.copy()
    OmegaConf.set_struct(run_cfg, False)
    run_cfg.run_dir = str(run_dir)
    if augmentations is not None:
        run_cfg.augmentations = augmentations
    start = time.perf_counter()
    path = fit_byol_a(
        module, cache, run_dir, OmegaConf.to_container(cfg.trainer, resolve=True),
        unit_sec=cfg.data.unit_sec, sample_rate=cfg.audio.sample_rate, batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers, norm_stats_clips=cfg.data.norm_stats_clips, config=run_cfg,
    )
    print(f"[pretrain] {run_dir} done in {time.perf_counter() - start:.0f} s -> {path}")
    return path


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain BYOL-A (RQ or Mixup per `augmentations`) on data.pretrain; resumes automatically."""
    return _pretrain(cfg, Path(cfg.run_dir))


def _encoder(cfg: DictConfig, checkpoint: str):
    if checkpoint == "random":
        # The initial weights of this config's pretrainings (see DemoSettings.random_init_seed).
        seed = cfg.trainer.seed if cfg.demo.random_init_seed is None else cfg.demo.random_init_seed
        m = cfg.model
        return random_encoder(cfg.audio.n_mels, m.feature_dim, m.encoder_channels, seed, _log_mel_kwargs(cfg))
    encoder, log_mel, _ = load_encoder(Path(checkpoint).expanduser())
    return encoder, log_mel


def embed(cfg: DictConfig) -> Path:
    """Features of a checkpoint for the clips of embed.source -> embed.output (.npz)."""
    encoder, log_mel = _encoder(cfg, cfg.embed.checkpoint)
    cache = _ensure_cache(cfg, cfg.embed.source)
    features = embed_cache(encoder, log_mel, cache, unit_sec=cfg.embed.unit_sec,
                           sample_rate=cfg.audio.sample_rate, batch_size=cfg.embed.batch_size)
    from rq_audio.data.hdf5_cache import read_cache_index

    index = read_cache_index(cache)
    out = Path(cfg.embed.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, features=features, file_names=np.asarray(index.file_names),
             labels=np.asarray(index.labels), splits=np.asarray(index.splits), folds=index.folds)
    save_config(cfg, cfg.run_dir)
    (Path(cfg.run_dir) / "checkpoints").mkdir(parents=True, exist_ok=True)
    _write_metrics(Path(cfg.run_dir), "embedding.csv", f"num_clips,feature_dim\n{features.shape[0]},{features.shape[1]}\n")
    print(f"[embed] {features.shape} -> {out}")
    return out


def _evaluate_methods(cfg: DictConfig, run_dir: Path, checkpoints: dict[str, str]) -> dict[str, Any]:
    ev = cfg.evaluate
    settings = ProbeSettings(lr=ev.probe_lr, max_epochs=ev.probe_max_epochs, patience=ev.probe_patience)
    if not ev.tasks:
        raise ValueError("evaluate.tasks is empty: list at least one {name, cache, unit_sec}")
    caches = {t.name: (_ensure_cache(cfg, t), t.unit_sec) for t in ev.tasks}
    results: dict[str, Any] = {"tasks": {n: {"unit_sec": u} for n, (_, u) in caches.items()}, "methods": {}}
    for method, checkpoint in checkpoints.items():
        encoder, log_mel = _encoder(cfg, checkpoint)
        per_task = {}
        for name, (cache, unit_sec) in caches.items():
            r = evaluate_task(encoder, log_mel, cache, unit_sec=unit_sec, seeds=tuple(ev.seeds),
                              settings=settings, batch_size=ev.batch_size, device=ev.device)
            per_task[name] = r
            print(f"[evaluate] {method:>8s} {name:>18s}: {100 * r['accuracy_mean']:.1f} +- {100 * r['accuracy_std']:.1f}")
        results["methods"][method] = {"checkpoint": checkpoint, "tasks": per_task}
    accuracy = {m: {t: r["accuracy_mean"] for t, r in v["tasks"].items()} for m, v in results["methods"].items()}
    for m, row in accuracy.items():
        results["methods"][m]["average_accuracy"] = float(np.mean(list(row.values())))
    table = results_markdown(accuracy)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    (run_dir / "results.md").write_text("Linear-probe accuracy (%), mean over seeds " + str(list(ev.seeds)) + "\n\n" + table + "\n")
    rows = ["method,task,accuracy_mean,accuracy_std"] + [
        f"{m},{t},{r['accuracy_mean']:.6f},{r['accuracy_std']:.6f}"
        for m, v in results["methods"].items() for t, r in v["tasks"].items()
    ]
    _write_metrics(run_dir, "evaluation.csv", "\n".join(rows) + "\n")
    print(table)
    return results


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Linear-probe evaluate.checkpoint on evaluate.tasks -> RUN_DIR/results.json + results.md."""
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    name = "random" if cfg.evaluate.checkpoint == "random" else Path(cfg.run_dir).name
    return _evaluate_methods(cfg, run_dir, {name: cfg.evaluate.checkpoint})


def demo(cfg: DictConfig) -> dict[str, Any]:
    """Offline corpus -> pretrain each demo method -> linear probe vs a random-init encoder."""
    from rq_audio.data.corpus import CorpusSettings, build_offline_corpus, cache_root
    from rq_audio.data.corpus.soundfont import SoundfontError

    start = time.perf_counter()
    run_dir = Path(cfg.run_dir)
    cache_dir = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache_root()
    settings = CorpusSettings(**OmegaConf.to_container(cfg.demo.corpus))
    try:
        corpus = build_offline_corpus(settings, cache_dir=cache_dir)
    except SoundfontError as error:  # a missing install, not a bug: one line, exit status 1
        raise SystemExit(f"rq-byol-a demo: {error}") from None
    print(f"[demo] corpus at {corpus.root} ({time.perf_counter() - start:.0f} s)")
    caches = corpus.root / f"cache_{cfg.audio.sample_rate}"
    pretrain_source = {"audio_dir": str(corpus.root), "metadata": str(corpus.pretrain_metadata),
                       "cache": str(caches / "pretrain.h5")}
    tasks = [
        {"name": name, "audio_dir": str(corpus.root), "metadata": str(meta),
         "cache": str(caches / f"{name}.h5"), "unit_sec": corpus.unit_sec}
        for name, meta in corpus.tasks.items()
    ]
    run_cfg = OmegaConf.merge(cfg, {"data": {"pretrain": pretrain_source}, "evaluate": {"tasks": tasks}})
    if not cfg.demo.methods:
        raise ValueError("demo.methods is empty: name at least one augmentation chain")
    save_config(run_cfg, run_dir)
    prepare(run_cfg)
    checkpoints = {"random": "random"}
    for method in run_cfg.demo.methods:
        if method.name in checkpoints:
            raise ValueError(f"demo.methods: duplicate or reserved name {method.name!r}")
        checkpoints[method.name] = str(
            _pretrain(run_cfg, run_dir / method.name, method.augmentations, supersede=True)
        )
    results = _evaluate_methods(run_cfg, run_dir, checkpoints)
    print(f"[demo] finished in {time.perf_counter() - start:.0f} s; results in {run_dir / 'results.json'}")
    return results
