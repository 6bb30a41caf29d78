"""The ``rq-byol-a`` commands, one function each: config -> rq_audio calls -> results.

Run plumbing comes from ``rq_core.runs``: the cache root, rank-zero-first cache building,
the :class:`~rq_core.runs.Stage` record that decides whether a pretraining is reused, and the
results writer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rq_audio.data.corpus import CorpusSettings, build_offline_corpus
from rq_audio.data.corpus.soundfont import SoundfontError
from rq_audio.data.hdf5_cache import prepare_audio_cache, read_cache_index
from rq_audio.evaluate import (
    accuracy_table,
    embed_cache,
    evaluate_task,
    load_encoder,
    random_encoder,
)
from rq_audio.learner import BYOLA
from rq_audio.pretrain import ENCODER_FILE
from rq_audio.pretrain import pretrain as fit_byol_a
from rq_core.config import save_config
from rq_core.linear_probe import ProbeSettings
from rq_core.runs import (
    Stage,
    StageChangedError,
    atomic_output,
    atomic_write,
    cache_root,
    process_rank,
    rank_zero_first,
    write_results,
)


def _log_mel_kwargs(cfg: DictConfig) -> dict[str, Any]:
    a = cfg.audio
    return dict(
        sample_rate=a.sample_rate, n_fft=a.n_fft, win_length=a.win_length,
        hop_length=a.hop_length, f_min=a.f_min, f_max=a.f_max, backend=a.backend,
        filterbank=a.filterbank,
    )


def _ensure_cache(cfg: DictConfig, source: DictConfig) -> Path:
    """The source's HDF5 cache, prepared from its folder first if it does not exist (by rank 0
    under torchrun; the other ranks wait for it)."""
    if not source.cache:
        raise ValueError(
            "a data source has no cache path: set its `cache` (e.g. data.pretrain.cache=...)"
        )
    cache = Path(source.cache).expanduser()
    if cache.is_file():
        return cache
    if not source.audio_dir:
        raise FileNotFoundError(
            f"cache {cache} does not exist and no audio_dir is given to make it from"
        )

    def build() -> None:
        summary = prepare_audio_cache(
            Path(source.audio_dir).expanduser(), cache,
            metadata=Path(source.metadata).expanduser() if source.metadata else None,
            sample_rate=cfg.audio.sample_rate, max_seconds=source.max_seconds,
            min_seconds=cfg.prepare.min_seconds,
            max_failure_fraction=cfg.prepare.max_failure_fraction,
            num_threads=cfg.prepare.num_threads,
        )
        listed = f" (listed in {summary.skipped_csv})" if summary.num_skipped else ""
        print(f"prepared {cache}: {summary.num_written} clips, "
              f"{summary.num_skipped} files skipped{listed}")

    rank_zero_first(cache, build)
    return cache


def _write_metrics(run_dir: Path, name: str, text: str) -> None:
    """Write ``name``; also ``metrics.csv`` unless the run dir has one (a pretraining's log)."""
    atomic_write(run_dir / name, text)
    if not (run_dir / "metrics.csv").exists():
        atomic_write(run_dir / "metrics.csv", text)


def prepare(cfg: DictConfig) -> list[Path]:
    """Make the HDF5 caches of the pretraining folder and every task that lacks one."""
    sources = []
    if cfg.data.pretrain.cache:
        sources.append(cfg.data.pretrain)
    sources += list(cfg.evaluate.tasks)
    if not sources:
        raise ValueError(
            "nothing to prepare: set data.pretrain.{audio_dir,cache} or evaluate.tasks"
        )
    return [_ensure_cache(cfg, s) for s in sources]


def build_module(cfg: DictConfig, augmentations: list[Any] | None = None) -> BYOLA:
    m = cfg.model
    chain = cfg.augmentations if augmentations is None else augmentations
    if not isinstance(chain, list):
        chain = OmegaConf.to_container(chain, resolve=True)
    return BYOLA(
        n_mels=cfg.audio.n_mels, feature_dim=m.feature_dim,
        projection_hidden_dim=m.projection_hidden_dim, projection_dim=m.projection_dim,
        ema_decay=m.ema_decay, lr=m.lr, augmentations=chain, log_mel=_log_mel_kwargs(cfg),
        encoder_channels=m.encoder_channels,
    )


# The record beside a pretraining (rq_core.runs.Stage): the name runs made before the Stage
# existed already carry, so they are recognised.
SETTINGS_FILE = "pretrain_settings.json"
# Config keys that do not change what a pretraining learns (logging, checkpoint cadence, loaders).
_NEUTRAL_KEYS = {
    "data": {"num_workers"},
    "trainer": {
        "log_every_n_steps", "checkpoint_every_n_steps", "tensorboard", "progress_bar", "resume"
    },
}
# The training budget: a larger one continues a run from its last checkpoint.
_BUDGET_KEYS = ("max_steps", "max_epochs")


def pretrain_stage(
    cfg: DictConfig, run_dir: Path, augmentations: list[Any] | None = None, *,
    exact_budget: bool = False,
) -> Stage:
    """The stage record of a pretraining into ``run_dir``: everything in the config that shapes
    its result (audio, model, chain, data and trainer less the neutral keys) as settings, the
    step/epoch budget as budget. ``exact_budget`` makes the budget a setting too (the demo: a
    run with another budget is moved aside instead of continued)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    chain = augmentations if augmentations is not None else c.get("augmentations")
    if not isinstance(chain, list):
        chain = OmegaConf.to_container(chain, resolve=True)
    settings = {"audio": c.get("audio"), "model": c.get("model"), "augmentations": chain}
    neutral = dict(_NEUTRAL_KEYS, trainer=_NEUTRAL_KEYS["trainer"] | set(_BUDGET_KEYS))
    for section, keys in neutral.items():
        settings[section] = {k: v for k, v in (c.get(section) or {}).items() if k not in keys}
    budget = {k: (c.get("trainer") or {}).get(k) for k in _BUDGET_KEYS}
    if exact_budget:
        settings["budget"] = budget
    return Stage(run_dir, settings, budget=budget, record=SETTINGS_FILE)


def _pretrain(
    cfg: DictConfig, run_dir: Path, augmentations: list[Any] | None = None, *,
    supersede: bool = False,
) -> Path:
    """Pretrain into ``run_dir`` unless it holds this pretraining, finished. A run made with
    other settings is never reused: ``supersede`` moves it aside (the demo), else it is refused
    (StageChangedError). Same settings with another budget continue from the last checkpoint
    (a preempted or extended run); ``force`` redoes a finished one (moved aside, kept)."""
    stage = pretrain_stage(cfg, run_dir, augmentations, exact_budget=supersede)
    encoder_path = run_dir / "checkpoints" / ENCODER_FILE
    on_change = "supersede" if supersede else "refuse"
    unrecorded = stage.read() is None and any(
        (run_dir / "checkpoints" / name).is_file() for name in (ENCODER_FILE, "last.ckpt")
    )
    if unrecorded:  # a pretraining whose settings nobody recorded: never continued blindly
        why = f"no {SETTINGS_FILE} says how it was made"
        if not (supersede or cfg.force):
            raise StageChangedError(
                f"{run_dir} holds a pretraining made with other settings: {why}; use another "
                "run_dir, or move that one away (or force=true) to train again"
            )
        if process_rank() == 0:
            print(f"[pretrain] {run_dir}: {why}; the old run is kept at {stage.move_aside()}")
    # Only rank 0 moves old runs aside and writes the record; the others read it.
    check = (stage.prepare(force=cfg.force, on_change=on_change) if process_rank() == 0
             else stage.check(force=cfg.force))
    if check.reusable and encoder_path.is_file():
        print(f"[pretrain] {encoder_path} exists: skipping (force=true trains again)")
        return encoder_path
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
    saved = fit_byol_a(
        module, cache, run_dir, OmegaConf.to_container(cfg.trainer, resolve=True),
        unit_sec=cfg.data.unit_sec, sample_rate=cfg.audio.sample_rate,
        batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
        norm_stats_clips=cfg.data.norm_stats_clips, config=run_cfg,
    )
    if saved is not None:  # rank 0, not interrupted: the encoder file is this run's
        stage.finish(encoder=str(saved), seconds=round(time.perf_counter() - start, 1))
    print(f"[pretrain] {run_dir} done in {time.perf_counter() - start:.0f} s -> {encoder_path}")
    return encoder_path


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain BYOL-A (RQ or Mixup per `augmentations`) on data.pretrain; resumes automatically."""
    return _pretrain(cfg, Path(cfg.run_dir))


def _encoder(cfg: DictConfig, checkpoint: str):
    if checkpoint == "random":
        # The initial weights of this config's pretrainings (see DemoSettings.random_init_seed).
        seed = cfg.trainer.seed if cfg.demo.random_init_seed is None else cfg.demo.random_init_seed
        m = cfg.model
        return random_encoder(
            cfg.audio.n_mels, m.feature_dim, m.encoder_channels, seed, _log_mel_kwargs(cfg)
        )
    encoder, log_mel, _ = load_encoder(Path(checkpoint).expanduser())
    return encoder, log_mel


def embed(cfg: DictConfig) -> Path:
    """Features of a checkpoint for the clips of embed.source -> embed.output (.npz)."""
    encoder, log_mel = _encoder(cfg, cfg.embed.checkpoint)
    cache = _ensure_cache(cfg, cfg.embed.source)
    features = embed_cache(encoder, log_mel, cache, unit_sec=cfg.embed.unit_sec,
                           sample_rate=cfg.audio.sample_rate, batch_size=cfg.embed.batch_size)
    index = read_cache_index(cache)
    out = Path(cfg.embed.output)
    with atomic_output(out, suffix=".npz") as tmp:
        np.savez(tmp, features=features, file_names=np.asarray(index.file_names),
                 labels=np.asarray(index.labels), splits=np.asarray(index.splits),
                 folds=index.folds)
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    _write_metrics(run_dir, "embedding.csv",
                   f"num_clips,feature_dim\n{features.shape[0]},{features.shape[1]}\n")
    print(f"[embed] {features.shape} -> {out}")
    return out


def _evaluate_methods(cfg: DictConfig, run_dir: Path, checkpoints: dict[str, str]) -> dict:
    ev = cfg.evaluate
    settings = ProbeSettings(**OmegaConf.to_container(ev.probe, resolve=True))
    if not ev.tasks:
        raise ValueError("evaluate.tasks is empty: list at least one {name, cache, unit_sec}")
    caches = {t.name: (_ensure_cache(cfg, t), t.unit_sec) for t in ev.tasks}
    results: dict[str, Any] = {
        "tasks": {n: {"unit_sec": u} for n, (_, u) in caches.items()}, "methods": {}
    }
    for method, checkpoint in checkpoints.items():
        encoder, log_mel = _encoder(cfg, checkpoint)
        per_task = {}
        for name, (cache, unit_sec) in caches.items():
            r = evaluate_task(encoder, log_mel, cache, unit_sec=unit_sec, seeds=tuple(ev.seeds),
                              settings=settings, batch_size=ev.batch_size, device=ev.device)
            per_task[name] = r
            print(f"[evaluate] {method:>8s} {name:>18s}: "
                  f"{100 * r['accuracy_mean']:.1f} +- {100 * r['accuracy_std']:.1f}")
        results["methods"][method] = {"checkpoint": checkpoint, "tasks": per_task}
    accuracy = {m: {t: r["accuracy_mean"] for t, r in v["tasks"].items()}
                for m, v in results["methods"].items()}
    for m, row in accuracy.items():
        results["methods"][m]["average_accuracy"] = float(np.mean(list(row.values())))
    table = accuracy_table(
        accuracy, f"Linear-probe accuracy (%), mean over probe seeds {list(ev.seeds)}"
    )
    write_results(run_dir, table, results, title="Audio (BYOL-A): linear probe")
    rows = ["method,task,accuracy_mean,accuracy_std"] + [
        f"{m},{t},{r['accuracy_mean']:.6f},{r['accuracy_std']:.6f}"
        for m, v in results["methods"].items() for t, r in v["tasks"].items()
    ]
    _write_metrics(run_dir, "evaluation.csv", "\n".join(rows) + "\n")
    print(table.markdown())
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
    start = time.perf_counter()
    run_dir = Path(cfg.run_dir)
    settings = CorpusSettings(**OmegaConf.to_container(cfg.demo.corpus, resolve=True))
    try:
        corpus = build_offline_corpus(settings, cache_dir=cache_root(override=cfg.cache_dir))
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
    run_cfg = OmegaConf.merge(
        cfg, {"data": {"pretrain": pretrain_source}, "evaluate": {"tasks": tasks}}
    )
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
    print(f"[demo] finished in {time.perf_counter() - start:.0f} s; "
          f"results in {run_dir / 'results.json'}")
    return results
