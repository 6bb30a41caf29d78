"""One function per ``rq-mid-net`` command: config -> rq_points calls -> results. Wiring only;
the pieces live in rq_points (data, pretrain, evaluate) and rq_core.runs (cache root, stage
reuse, results files)."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rq_core.config import ConfigError, save_config
from rq_core.runs import (
    RANK_ZERO_WAIT_S,
    ResultsTable,
    Stage,
    StageChangedError,
    atomic_write,
    cache_root,
    process_rank,
    write_results,
)
from rq_core.sweep import SweepPoint, run_sweep, sweep_points
from rq_core.training import last_checkpoint
from rq_core.uncertainty import (
    Estimate,
    bootstrap_estimate,
    compare_methods,
)
from rq_points.augmentations import PointAugmentation
from rq_points.data.shape_cache import ShapeCache
from rq_points.data.shape_sets import prepare_shape_set, split_indices
from rq_points.evaluate import FeatureStore, load_pretrained, probe_rows, probe_statistics
from rq_points.evaluate import classify as classify_protocol
from rq_points.evaluate import segment as segment_protocol
from rq_points.pretrain import pretrain as fit_mid_net

__all__ = ["COMMANDS", "classify", "demo", "prepare", "pretrain", "segment", "sweep"]

# Trainer keys that do not change what a pretraining learns (how it is shown or saved).
_TRAINER_COSMETIC = (
    "resume",
    "progress_bar",
    "tensorboard",
    "log_every_n_steps",
    "checkpoint_every_n_steps",
)
# Trainer keys that only extend a finished pretraining (Stage budget: resume, not redo).
_TRAINER_BUDGET = ("max_epochs", "max_steps")
_EVAL_KEYS = ("classify_data", "segment_data", "classify", "segment", "model")


# ------------------------------------------------------------------------------ wiring


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _object(node: DictConfig) -> Any:
    """The dataclass instance of a structured config section."""
    return OmegaConf.to_object(node)


def _apply_threads(cfg: DictConfig) -> None:
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)


def _device(cfg: DictConfig) -> str:
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device


# The method presets (``method=``): the paper's chain with RQ (Wu et al., ICCV 2023, Sec. 5.2:
# MID-Net's augmentations then RQ on xyz, 30 bins, random spacing and collapse) and the MID-FC
# baseline (Wang et al. 2021: the same chain without RQ). The ``augmentation.*`` keys tune the
# chain of ``rq``; ``midfc`` ignores the ``rq_*`` keys.
METHODS = ("rq", "midfc")


def method_augmentation(cfg: DictConfig) -> PointAugmentation:
    """The augmentation chain of ``cfg.method`` with the config's ``augmentation`` keys
    (``cfg``: the app's config, or its plain dump as ``--print-config`` writes it)."""
    augmentation = PointAugmentation(**_plain(cfg.augmentation))
    if cfg.method == "midfc":
        return replace(augmentation, rq_bins=0)
    if cfg.method != "rq":
        raise ConfigError(f"method must be one of {'|'.join(METHODS)}, got {cfg.method!r}")
    if augmentation.rq_bins <= 0:
        raise ConfigError(
            f"method=rq with augmentation.rq_bins={augmentation.rq_bins}: RQ needs >= 1 bin "
            "(the paper's 30); for the baseline without RQ use method=midfc"
        )
    return augmentation


def _shapes(cfg: DictConfig, key: str) -> ShapeCache:
    """The cache of ``cfg[key]`` (data, classify_data or segment_data), built on first use."""
    return prepare_shape_set(_object(cfg[key]), cache_root("points", override=cfg.cache_dir))


def _pretrain_stage(cfg: DictConfig) -> Stage:
    """The reuse record of a pretraining in ``cfg.run_dir``: every section that shapes the
    weights is a setting; max_epochs/max_steps are the budget (more extends the run)."""
    trainer = _plain(cfg.trainer)
    budget = {k: trainer.pop(k) for k in _TRAINER_BUDGET}
    for key in _TRAINER_COSMETIC:
        trainer.pop(key)
    settings = {k: _plain(cfg[k]) for k in ("data", "model", "optim", "loss")}
    settings["method"] = cfg.method
    settings["augmentation"] = asdict(method_augmentation(cfg))  # the chain the run used
    settings["trainer"] = trainer
    return Stage(cfg.run_dir, settings, budget=budget)


def _wait_for_fresh_stage(stage: Stage) -> None:
    """Ranks > 0 of a forced run: wait until rank 0 has moved the old run aside (a record
    that is unfinished and no last.ckpt), so that no rank resumes from the old weights."""
    deadline = time.monotonic() + RANK_ZERO_WAIT_S
    while True:
        record = stage.read()
        if record and not record.get("finished") and not last_checkpoint(stage.directory).exists():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {process_rank()}: rank 0 did not restart {stage.directory}")
        time.sleep(1.0)


def _run_pretraining(cfg: DictConfig, *, on_change: str) -> tuple[Path, float | None]:
    """Pretrain into ``cfg.run_dir`` unless a finished run with these settings is there
    (``force`` redoes it). ``on_change``: ``refuse`` (the user's own run_dir) or
    ``supersede`` (the demo's stage folders). Returns the checkpoint and the seconds the
    finished run took (``None`` when unknown)."""
    stage = _pretrain_stage(cfg)
    if process_rank() == 0:
        check = stage.prepare(force=cfg.force, on_change=on_change)
    else:  # rank 0 decides and moves aside; the others follow its decision
        check = stage.check()
        if check.state == "changed":
            raise StageChangedError(f"{stage.directory} holds a result made with other settings")
        if cfg.force:
            _wait_for_fresh_stage(stage)
            check = stage.check()
    if check.reusable:
        print(f"[pretrain] {cfg.run_dir}: finished with these settings; reused")
        return last_checkpoint(cfg.run_dir), stage.outputs().get("seconds")
    cache = _shapes(cfg, "data")
    started = time.time()
    checkpoint = fit_mid_net(
        cache,
        split_indices(cache, list(cfg.data.splits)),
        cfg.run_dir,
        model=_object(cfg.model),
        augmentation=method_augmentation(cfg),
        optim=_object(cfg.optim),
        loss=_object(cfg.loss),
        trainer=_object(cfg.trainer),
        config=cfg,
    )
    seconds = time.time() - started
    if process_rank() == 0:
        stage.finish(seconds=seconds, checkpoint=str(checkpoint))
    print(f"[pretrain] done: {checkpoint}")
    return checkpoint, seconds


def _pretrained_spec(cfg: DictConfig) -> str:
    return cfg.pretrained or str(last_checkpoint(cfg.run_dir))


def _evaluate(cfg: DictConfig, spec: str, tasks: tuple[str, ...]) -> dict:
    """The probes of ``tasks`` on the backbone ``spec``: ``classify``, ``segment``, or
    ``segment_if_parts`` (segment when ``segment_data`` has part labels: a folder of your
    own shapes has none)."""
    net, method = load_pretrained(spec, _object(cfg.model), cfg.trainer.seed)
    store = FeatureStore(net, _device(cfg), cfg.segment.points_per_shape)
    out: dict[str, Any] = {"pretrained": spec, "method": method}
    if "classify" in tasks:
        out["classify"] = classify_protocol(
            store, _shapes(cfg, "classify_data"), _object(cfg.classify)
        )
    if "segment" in tasks or "segment_if_parts" in tasks:
        cache = _shapes(cfg, "segment_data")
        if cache.part_names or "segment" in tasks:  # the segment command insists
            out["segment"] = segment_protocol(store, cache, _object(cfg.segment))
        else:
            print(f"[evaluate] {cache.path} has no part labels: segmentation skipped")
    return out


# ------------------------------------------------------------------------------ results


def results_tables(results: dict[str, dict], title: str, notes: list[str]) -> list[ResultsTable]:
    """Each method's linear-probe accuracy and segmentation C./I.mIoU per data ratio with a
    95% bootstrap interval over test shapes and probe seeds, and each method against random
    init and the MID-FC baseline, paired on the same test shapes, with a verdict
    (:func:`rq_core.uncertainty.compare_methods`)."""
    tables = compare_methods(title, probe_statistics(results), reference="random", baseline="midfc")
    tables[0].notes = [*notes, *tables[0].notes]
    return [t for t in tables if t.rows]


def _write(run_dir: Path, tables: list[ResultsTable], data: dict, rows: list[dict]) -> None:
    write_results(run_dir, tables, data)
    header = "method,task,ratio,metric,value\n"
    lines = [f"{r['method']},{r['task']},{r['ratio']},{r['metric']},{r['value']}" for r in rows]
    atomic_write(run_dir / "results.csv", header + "\n".join(lines) + "\n")
    for table in tables:
        print(table.markdown(level=2))


def _probe_notes(cfg: DictConfig) -> list[str]:
    return [
        "classification: linear probe on the frozen global feature (test accuracy %, probe "
        f"seeds {list(cfg.classify.seeds)}); segmentation: 2-FC head on frozen point "
        f"features (C.mIoU and I.mIoU %, probe seeds {list(cfg.segment.seeds)}).",
    ]


# ------------------------------------------------------------------------------ commands


def prepare(cfg: DictConfig) -> dict:
    """Build the HDF5 caches of data, classify_data and segment_data."""
    _apply_threads(cfg)
    out = {}
    for key in ("data", "classify_data", "segment_data"):
        cache = _shapes(cfg, key)
        out[key] = cache.path
        print(f"[prepare] {key}: {cache.path} ({len(cache)} shapes, {cache.num_classes} classes)")
    return out


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain MID-Net with the chain of ``method`` (rq | midfc); checkpoints in RUN_DIR."""
    _apply_threads(cfg)
    checkpoint, _ = _run_pretraining(cfg, on_change="refuse")
    return checkpoint


def _probe_command(cfg: DictConfig, task: str) -> dict:
    _apply_threads(cfg)
    spec = _pretrained_spec(cfg)
    result = _evaluate(cfg, spec, (task,))
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    results = {result["method"]: result}
    tables = results_tables(results, f"MID-Net {task}", _probe_notes(cfg))
    _write(run_dir, tables, result, probe_rows(results))
    return result


def classify(cfg: DictConfig) -> dict:
    """Linear probe (and optional finetune) on the frozen global feature at the data ratios."""
    return _probe_command(cfg, "classify")


def segment(cfg: DictConfig) -> dict:
    """2-FC head on frozen point features; C.mIoU and I.mIoU at the data ratios."""
    return _probe_command(cfg, "segment")


DEMO_VARIANTS = ("random", "midfc", "rq")
# The version of what an evaluation stage stores; 2: per-item outputs for the intervals.
_EVAL_PROTOCOL = 2


def demo_variant_config(cfg: DictConfig, variant: str) -> DictConfig:
    """The config of the demo's pretraining of ``variant`` (a method preset), run in
    ``RUN_DIR/pretrain_<variant>``."""
    sub = copy.deepcopy(cfg)
    sub.run_dir = str(Path(cfg.run_dir) / f"pretrain_{variant}")
    sub.method = variant
    return sub


def _pretrained_and_evaluated(
    cfg: DictConfig, pretrain_cfg: DictConfig | None, eval_dir: Path
) -> tuple[dict, float | None]:
    """Pretrain with ``pretrain_cfg`` (``None``: random init), then probe (classify and
    segment) in the stage ``eval_dir``; both reused when finished with the same settings.
    Returns the evaluation's results and the pretraining's seconds."""
    spec, pretrain_settings, seconds = "random", None, None
    if pretrain_cfg is not None:
        checkpoint, seconds = _run_pretraining(pretrain_cfg, on_change="supersede")
        spec, pretrain_settings = str(checkpoint), _pretrain_stage(pretrain_cfg).settings
    settings = {k: _plain(cfg[k]) for k in _EVAL_KEYS}
    settings["pretrained"] = {"path": spec, "settings": pretrain_settings}
    settings["protocol"] = _EVAL_PROTOCOL
    stage = Stage(eval_dir, settings)
    if stage.prepare(force=cfg.force, on_change="supersede").reusable:
        return stage.outputs()["results"], seconds
    evaluated_at = time.time()
    result = _evaluate(cfg, spec, ("classify", "segment_if_parts"))
    result["eval_seconds"] = time.time() - evaluated_at
    stage.finish(results=result)
    return result, seconds


def _check_variants(variants) -> None:
    unknown = sorted(set(variants) - set(DEMO_VARIANTS))
    if unknown:
        raise ConfigError(f"demo_variants: unknown {unknown}; choose from {list(DEMO_VARIANTS)}")


def demo(cfg: DictConfig) -> dict:
    """Pretrain with and without RQ on the procedural shapes, probe both and a random init.

    Each pretraining (``RUN_DIR/pretrain_<variant>``) and each evaluation
    (``RUN_DIR/eval_<variant>``) is a :class:`rq_core.runs.Stage`: reused while its settings
    are unchanged, moved aside when they changed, redone with ``force=true``."""
    _apply_threads(cfg)
    run_dir = Path(cfg.run_dir)
    _check_variants(cfg.demo_variants)
    save_config(cfg, run_dir)
    started = time.time()
    _shapes(cfg, "data")
    results, timings = {}, {}
    for variant in cfg.demo_variants:
        pretrain_cfg = None if variant == "random" else demo_variant_config(cfg, variant)
        results[variant], seconds = _pretrained_and_evaluated(
            cfg, pretrain_cfg, run_dir / f"eval_{variant}"
        )
        if pretrain_cfg is not None:
            timings[f"pretrain_{variant}_s"] = seconds
    tables = results_tables(results, "MID-Net demo (procedural shapes)", _probe_notes(cfg))
    summary = {"results": results, "timings": timings, "total_seconds": time.time() - started}
    _write(run_dir, tables, summary, probe_rows(results))
    return summary


def _estimates(result: dict) -> dict[str, Estimate]:
    """{column: Estimate in %} of one method's probes."""
    (stats,) = probe_statistics({"method": result}).values()
    return {column: bootstrap_estimate(stat).scaled(100) for column, stat in stats.items()}


def sweep(cfg: DictConfig) -> list:
    """Pretrain and probe once per quantizer setting of ``sweep`` (bins x spacing x
    collapse; the demo's budget by default), with random init and MID-FC as reference bands.

    Writes ``RUN_DIR/sweep/results.{json,md}`` (each point's probe metrics with 95%
    intervals) and ``RUN_DIR/sweep/sweep.png``; each point is a stage under
    ``RUN_DIR/sweep/sweep/`` (finished points are reused, ``force=true`` redoes them). The
    references are the demo's stages (``RUN_DIR/pretrain_midfc``, ``RUN_DIR/eval_*``): a
    sweep in the demo's run_dir reuses them."""
    _apply_threads(cfg)
    run_dir = Path(cfg.run_dir)
    points = sweep_points(_object(cfg.sweep))
    save_config(cfg, run_dir / "sweep")
    _shapes(cfg, "data")
    bands = {}
    for variant in ("random", "midfc"):
        pretrain_cfg = None if variant == "random" else demo_variant_config(cfg, variant)
        result, _ = _pretrained_and_evaluated(cfg, pretrain_cfg, run_dir / f"eval_{variant}")
        bands[variant] = _estimates(result)

    def run_point(point: SweepPoint, point_dir: Path) -> dict[str, Estimate]:
        sub = copy.deepcopy(cfg)
        sub.run_dir = str(point_dir / "pretrain")
        sub.method = "rq"
        sub.augmentation.rq_bins = point.num_bins
        sub.augmentation.rq_spacing = point.spacing
        sub.augmentation.rq_collapse = point.collapse
        result, _ = _pretrained_and_evaluated(sub, sub, point_dir / "eval")
        return _estimates(result)

    settings = _pretrain_stage(cfg).settings
    settings.pop("method")
    augmentation = dict(settings.pop("augmentation"))
    for key in ("rq_bins", "rq_spacing", "rq_collapse"):  # the point's own
        augmentation.pop(key)
    settings["augmentation"] = augmentation
    settings["budget"] = _pretrain_stage(cfg).budget
    settings["evaluation"] = {k: _plain(cfg[k]) for k in _EVAL_KEYS}
    settings["protocol"] = _EVAL_PROTOCOL
    return run_sweep(
        points,
        run_point,
        run_dir=run_dir / "sweep",
        settings=settings,
        force=cfg.force,
        bands=bands,
        title="MID-Net sweep of the quantizer (procedural shapes)",
    )


COMMANDS = {
    "prepare": prepare,
    "pretrain": pretrain,
    "classify": classify,
    "segment": segment,
    "demo": demo,
    "sweep": sweep,
}
