"""The ``rq-byol-a`` commands, one function each: config -> rq_audio calls -> results.

Run plumbing comes from ``rq_core.runs``: the cache root, rank-zero-first cache building,
the :class:`~rq_core.runs.Stage` record that decides whether a pretraining is reused, and the
results writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rq_audio.data.corpus import CorpusSettings, build_offline_corpus
from rq_audio.data.corpus.soundfont import SoundfontError
from rq_audio.data.hdf5_cache import prepare_audio_cache, read_cache_index
from rq_audio.evaluate import embed_cache, evaluate_task, load_encoder, random_encoder
from rq_audio.learner import BYOLA, method_chain
from rq_audio.pretrain import ENCODER_FILE
from rq_audio.pretrain import pretrain as fit_byol_a
from rq_core.config import ConfigError, save_config
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
from rq_core.sweep import SweepConfig, SweepPoint, run_sweep, sweep_points
from rq_core.uncertainty import Estimate, Statistic, bootstrap_estimate, compare_methods, mean_of

# The row names of every table: random init, and the BYOL-A baseline every method is compared
# with besides it.
RANDOM, BASELINE = "random", "mixup"


def _log_mel_kwargs(cfg: DictConfig) -> dict[str, Any]:
    a = cfg.audio
    return dict(
        sample_rate=a.sample_rate,
        n_fft=a.n_fft,
        win_length=a.win_length,
        hop_length=a.hop_length,
        f_min=a.f_min,
        f_max=a.f_max,
        backend=a.backend,
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
            Path(source.audio_dir).expanduser(),
            cache,
            metadata=Path(source.metadata).expanduser() if source.metadata else None,
            sample_rate=cfg.audio.sample_rate,
            max_seconds=source.max_seconds,
            min_seconds=cfg.prepare.min_seconds,
            max_failure_fraction=cfg.prepare.max_failure_fraction,
            num_threads=cfg.prepare.num_threads,
        )
        listed = f" (listed in {summary.skipped_csv})" if summary.num_skipped else ""
        print(
            f"prepared {cache}: {summary.num_written} clips, "
            f"{summary.num_skipped} files skipped{listed}"
        )

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


@dataclass(frozen=True)
class Chain:
    """An augmentation chain, the method (row) name it trains and where it came from."""

    augmentations: list[dict[str, Any]]
    method: str
    source: str


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def resolve_chain(cfg: DictConfig, method: Any = None) -> Chain:
    """The chain a pretraining trains. ``method`` (default: ``cfg.method``, unless
    ``cfg.augmentations`` gives an explicit chain, which replaces the preset) is a preset name
    (its chain from rq_audio.learner.METHOD_CHAINS with ``cfg.rq``'s values set on its ``rq``
    entry) or a demo entry ``{name, augmentations}``."""
    method = _plain(method)
    if isinstance(method, dict):
        if "name" not in method or "augmentations" not in method:
            raise ConfigError(f"demo.methods: {method} needs a name and augmentations")
        return Chain(list(method["augmentations"]), str(method["name"]), "demo.methods entry")
    if method is None and cfg.augmentations is not None:
        return Chain(list(_plain(cfg.augmentations)), "custom", "augmentations (explicit chain)")
    name = str(method if method is not None else cfg.method)
    overrides = {k: v for k, v in _plain(cfg.rq).items() if v is not None}
    try:
        chain = method_chain(name, {"rq": overrides})
    except ValueError as error:
        raise ConfigError(str(error)) from None
    source = f"method={name} (preset)"
    if overrides and any(entry["name"] == "rq" for entry in chain):
        source += " with " + ", ".join(f"rq.{k}={v}" for k, v in overrides.items())
    return Chain(chain, name, source)


def build_module(cfg: DictConfig, augmentations: list[Any]) -> BYOLA:
    m = cfg.model
    return BYOLA(
        n_mels=cfg.audio.n_mels,
        feature_dim=m.feature_dim,
        projection_hidden_dim=m.projection_hidden_dim,
        projection_dim=m.projection_dim,
        ema_decay=m.ema_decay,
        lr=m.lr,
        augmentations=_plain(augmentations),
        log_mel=_log_mel_kwargs(cfg),
        encoder_channels=m.encoder_channels,
    )


# The record beside a pretraining (rq_core.runs.Stage): the name runs made before the Stage
# existed already carry, so they are recognised.
SETTINGS_FILE = "pretrain_settings.json"
# Config keys that do not change what a pretraining learns (logging, checkpoint cadence, loaders).
_NEUTRAL_KEYS = {
    "data": {"num_workers"},
    "trainer": {
        "log_every_n_steps",
        "checkpoint_every_n_steps",
        "tensorboard",
        "progress_bar",
        "resume",
    },
}
# The training budget: a larger one continues a run from its last checkpoint.
_BUDGET_KEYS = ("max_steps", "max_epochs")


def pretrain_stage(
    cfg: DictConfig,
    run_dir: Path,
    augmentations: list[Any] | None = None,
    *,
    exact_budget: bool = False,
) -> Stage:
    """The stage record of a pretraining into ``run_dir``: everything in the config that shapes
    its result (audio, model, chain, data and trainer less the neutral keys) as settings, the
    step/epoch budget as budget. ``exact_budget`` makes the budget a setting too (the demo: a
    run with another budget is moved aside instead of continued)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    chain = resolve_chain(cfg).augmentations if augmentations is None else _plain(augmentations)
    settings = {"audio": c.get("audio"), "model": c.get("model"), "augmentations": chain}
    neutral = dict(_NEUTRAL_KEYS, trainer=_NEUTRAL_KEYS["trainer"] | set(_BUDGET_KEYS))
    for section, keys in neutral.items():
        settings[section] = {k: v for k, v in (c.get(section) or {}).items() if k not in keys}
    budget = {k: (c.get("trainer") or {}).get(k) for k in _BUDGET_KEYS}
    if exact_budget:
        settings["budget"] = budget
    return Stage(run_dir, settings, budget=budget, record=SETTINGS_FILE)


def _pretrain(
    cfg: DictConfig, run_dir: Path, chain: Chain | None = None, *, supersede: bool = False
) -> Path:
    """Pretrain into ``run_dir`` unless it holds this pretraining, finished. A run made with
    other settings is never reused: ``supersede`` moves it aside (the demo), else it is refused
    (StageChangedError). Same settings with another budget continue from the last checkpoint
    (a preempted or extended run); ``force`` redoes a finished one (moved aside, kept)."""
    chain = resolve_chain(cfg) if chain is None else chain
    stage = pretrain_stage(cfg, run_dir, chain.augmentations, exact_budget=supersede)
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
    check = (
        stage.prepare(force=cfg.force, on_change=on_change)
        if process_rank() == 0
        else stage.check(force=cfg.force)
    )
    if check.reusable and encoder_path.is_file():
        print(f"[pretrain] {encoder_path} exists: skipping (force=true trains again)")
        return encoder_path
    cache = _ensure_cache(cfg, cfg.data.pretrain)
    # The initial weights come from the run's seed, not from whatever the process drew before
    # (building caches, an earlier method in the demo): the same settings give the same run.
    torch.manual_seed(cfg.trainer.seed)
    module = build_module(cfg, chain.augmentations)
    run_cfg = cfg.copy()
    OmegaConf.set_struct(run_cfg, False)
    run_cfg.run_dir = str(run_dir)
    run_cfg.augmentations = chain.augmentations  # the config dump records the chain trained
    print(f"[pretrain] {run_dir}: {chain.method}, chain from {chain.source}")
    start = time.perf_counter()
    saved = fit_byol_a(
        module,
        cache,
        run_dir,
        OmegaConf.to_container(cfg.trainer, resolve=True),
        unit_sec=cfg.data.unit_sec,
        sample_rate=cfg.audio.sample_rate,
        batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers,
        norm_stats_clips=cfg.data.norm_stats_clips,
        config=run_cfg,
    )
    if saved is not None:  # rank 0, not interrupted: the encoder file is this run's
        stage.finish(
            encoder=str(saved),
            method=chain.method,
            chain_from=chain.source,
            augmentations=chain.augmentations,
            seconds=round(time.perf_counter() - start, 1),
        )
    print(f"[pretrain] {run_dir} done in {time.perf_counter() - start:.0f} s -> {encoder_path}")
    return encoder_path


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain BYOL-A with method=rq|mixup (or an explicit `augmentations` chain) on
    data.pretrain; resumes automatically."""
    return _pretrain(cfg, Path(cfg.run_dir))


def _encoder(cfg: DictConfig, checkpoint: str):
    if checkpoint == RANDOM:
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
    features = embed_cache(
        encoder,
        log_mel,
        cache,
        unit_sec=cfg.embed.unit_sec,
        sample_rate=cfg.audio.sample_rate,
        batch_size=cfg.embed.batch_size,
    )
    index = read_cache_index(cache)
    out = Path(cfg.embed.output)
    with atomic_output(out, suffix=".npz") as tmp:
        np.savez(
            tmp,
            features=features,
            file_names=np.asarray(index.file_names),
            labels=np.asarray(index.labels),
            splits=np.asarray(index.splits),
            folds=index.folds,
        )
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    _write_metrics(
        run_dir,
        "embedding.csv",
        f"num_clips,feature_dim\n{features.shape[0]},{features.shape[1]}\n",
    )
    print(f"[embed] {features.shape} -> {out}")
    return out


def _probe(cfg: DictConfig, checkpoint: str) -> dict[str, dict[str, Any]]:
    """Probe one encoder on every task: task -> rq-core's probe summary, with the accuracy's
    bootstrap statistic (over test items and probe seeds) under ``"statistic"``."""
    ev = cfg.evaluate
    if not ev.tasks:
        raise ValueError("evaluate.tasks is empty: list at least one {name, cache, unit_sec}")
    settings = ProbeSettings(**_plain(ev.probe))
    encoder, log_mel = _encoder(cfg, checkpoint)
    per_task = {}
    for task in ev.tasks:
        r = evaluate_task(
            encoder,
            log_mel,
            _ensure_cache(cfg, task),
            unit_sec=task.unit_sec,
            seeds=tuple(ev.seeds),
            settings=settings,
            batch_size=ev.batch_size,
            device=ev.device,
            return_predictions=True,
        )
        r["statistic"] = r.pop("predictions").statistic()
        per_task[task.name] = r
    return per_task


def _statistics(per_task: dict[str, dict[str, Any]]) -> dict[str, Statistic]:
    """Columns of a results row: each task's accuracy and their average."""
    columns = {name: r["statistic"] for name, r in per_task.items()}
    columns["average"] = mean_of(list(columns.values()))
    return columns


def _evaluate_methods(
    cfg: DictConfig, run_dir: Path, checkpoints: dict[str, str], chains: dict[str, Chain]
) -> dict[str, Any]:
    """Probe every method's encoder; write results.json/results.md: each method's accuracy
    with its 95 % interval, and each method against random init and Mixup, paired on the same
    test items, with a verdict (rq_core.uncertainty.compare_methods)."""
    ev = cfg.evaluate
    results: dict[str, Any] = {
        "tasks": {t.name: {"unit_sec": t.unit_sec} for t in ev.tasks},
        "methods": {},
    }
    statistics = {}
    for method, checkpoint in checkpoints.items():
        per_task = _probe(cfg, checkpoint)
        statistics[method] = _statistics(per_task)
        for name, r in per_task.items():
            print(
                f"[evaluate] {method:>8s} {name:>18s}: "
                f"{100 * r['accuracy_mean']:.1f} +- {100 * r['accuracy_std']:.1f}"
            )
            del r["statistic"]
        chain = chains.get(method)
        results["methods"][method] = {
            "checkpoint": checkpoint,
            "augmentations": chain.augmentations if chain else None,
            "chain_from": chain.source if chain else None,
            "tasks": per_task,
            "average_accuracy": float(np.mean([r["accuracy_mean"] for r in per_task.values()])),
        }
    tables = compare_methods(
        f"Linear-probe accuracy (%), probe seeds {list(ev.seeds)}",
        statistics,
        reference=RANDOM,
        baseline=BASELINE,
    )
    write_results(run_dir, tables, results, title="Audio (BYOL-A): linear probe")
    rows = ["method,task,accuracy_mean,accuracy_std"] + [
        f"{m},{t},{r['accuracy_mean']:.6f},{r['accuracy_std']:.6f}"
        for m, v in results["methods"].items()
        for t, r in v["tasks"].items()
    ]
    _write_metrics(run_dir, "evaluation.csv", "\n".join(rows) + "\n")
    for table in tables:
        print(table.markdown(level=3))
    return results


def _method_of(cfg: DictConfig, checkpoint: str) -> Chain | None:
    """The method an encoder was pretrained with: what its run's pretraining record says,
    else what this config would train (``None`` for random init)."""
    if checkpoint == RANDOM:
        return None
    run_dir = Path(checkpoint).expanduser().parent.parent
    outputs = Stage(run_dir, {}, record=SETTINGS_FILE).outputs()
    if "method" in outputs:
        return Chain(
            list(outputs.get("augmentations") or []),
            str(outputs["method"]),
            str(outputs.get("chain_from", "")),
        )
    return resolve_chain(cfg)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Linear-probe evaluate.checkpoint on evaluate.tasks -> RUN_DIR/results.json + results.md
    (the row is named by the method: rq, mixup, custom; random for evaluate.checkpoint=random)."""
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    chain = _method_of(cfg, cfg.evaluate.checkpoint)
    name = RANDOM if chain is None else chain.method
    return _evaluate_methods(
        cfg, run_dir, {name: cfg.evaluate.checkpoint}, {name: chain} if chain else {}
    )


def _with_demo_data(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the offline corpus as the pretraining folder and its two tasks (built, or
    reused, under the cache root)."""
    start = time.perf_counter()
    settings = CorpusSettings(**_plain(cfg.demo.corpus))
    try:
        corpus = build_offline_corpus(settings, cache_dir=cache_root(override=cfg.cache_dir))
    except SoundfontError as error:  # a missing install, not a bug: one line, exit status 1
        raise SystemExit(f"rq-byol-a demo: {error}") from None
    print(f"[demo] corpus at {corpus.root} ({time.perf_counter() - start:.0f} s)")
    caches = corpus.root / f"cache_{cfg.audio.sample_rate}"
    pretrain_source = {
        "audio_dir": str(corpus.root),
        "metadata": str(corpus.pretrain_metadata),
        "cache": str(caches / "pretrain.h5"),
    }
    tasks = [
        {
            "name": name,
            "audio_dir": str(corpus.root),
            "metadata": str(meta),
            "cache": str(caches / f"{name}.h5"),
            "unit_sec": corpus.unit_sec,
        }
        for name, meta in corpus.tasks.items()
    ]
    return OmegaConf.merge(
        cfg, {"data": {"pretrain": pretrain_source}, "evaluate": {"tasks": tasks}}
    )


def demo(cfg: DictConfig) -> dict[str, Any]:
    """Offline corpus -> pretrain each of demo.methods -> linear probe vs a random-init
    encoder, with intervals and paired comparisons."""
    start = time.perf_counter()
    run_dir = Path(cfg.run_dir)
    if not cfg.demo.methods:
        raise ValueError("demo.methods is empty: name at least one method (rq, mixup)")
    run_cfg = _with_demo_data(cfg)
    save_config(run_cfg, run_dir)
    prepare(run_cfg)
    checkpoints, chains = {RANDOM: RANDOM}, {}
    for method in run_cfg.demo.methods:
        chain = resolve_chain(run_cfg, method)
        if chain.method in checkpoints:
            raise ValueError(f"demo.methods: duplicate or reserved name {chain.method!r}")
        chains[chain.method] = chain
        checkpoints[chain.method] = str(
            _pretrain(run_cfg, run_dir / chain.method, chain, supersede=True)
        )
    results = _evaluate_methods(run_cfg, run_dir, checkpoints, chains)
    print(
        f"[demo] finished in {time.perf_counter() - start:.0f} s; "
        f"results in {run_dir / 'results.json'}"
    )
    return results


def _estimates(statistics: dict[str, Statistic]) -> dict[str, Estimate]:
    return {column: bootstrap_estimate(s).scaled(100.0) for column, s in statistics.items()}


def sweep(cfg: DictConfig) -> list:
    """Pretrain + probe the RQ chain at every point of sweep.bins x sweep.spacing x
    sweep.collapse (the `rq` entry's num_bins / spacing / collapse), on the demo corpus unless
    evaluate.tasks are given; finished points are reused. Writes results.json/results.md and
    sweep.png under run_dir, with random init and Mixup as reference bands."""
    try:
        points = sweep_points(SweepConfig(**_plain(cfg.sweep)))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    run_dir = Path(cfg.run_dir)
    run_cfg = cfg if cfg.evaluate.tasks else _with_demo_data(cfg)
    save_config(run_cfg, run_dir)
    prepare(run_cfg)

    def run_point(point: SweepPoint, point_dir: Path) -> dict[str, Estimate]:
        quantizer = {
            "num_bins": point.num_bins,
            "spacing": point.spacing,
            "collapse": point.collapse,
        }
        point_cfg = OmegaConf.merge(run_cfg, {"rq": quantizer})
        encoder = _pretrain(point_cfg, point_dir, resolve_chain(point_cfg, "rq"), supersede=True)
        return _estimates(_statistics(_probe(point_cfg, str(encoder))))

    baseline = _pretrain(
        run_cfg, run_dir / "baselines" / BASELINE, resolve_chain(run_cfg, BASELINE), supersede=True
    )
    bands = {
        RANDOM: _estimates(_statistics(_probe(run_cfg, RANDOM))),
        BASELINE: _estimates(_statistics(_probe(run_cfg, str(baseline)))),
    }
    record = pretrain_stage(run_cfg, run_dir, []).settings
    record.pop("augmentations")
    record["evaluate"] = _plain(run_cfg.evaluate)
    record["rq"] = {
        k: v for k, v in _plain(run_cfg.rq).items() if k not in ("num_bins", "spacing", "collapse")
    }
    tables = run_sweep(
        points,
        run_point,
        run_dir=run_dir,
        settings=record,
        force=cfg.force,
        bands=bands,
        title="Audio (BYOL-A): linear-probe accuracy (%) vs RQ bins",
    )
    for table in tables:
        print(table.markdown(level=3))
    return tables
