"""``build_trainer`` and ``fit``: the Lightning setup every app trains with."""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn

from rq_core.config import ConfigError
from rq_core.seeding import seed_everything_per_rank
from rq_core.training.checkpoint_io import AtomicCheckpointIO, load_checkpoint, to_weights_only
from rq_core.training.metrics_csv import MetricsCSVLogger
from rq_core.training.run_checkpoint import LAST_NAME, PREVIOUS_NAME, RunCheckpoint
from rq_core.training.trainer_config import TrainerConfig

__all__ = ["build_trainer", "fit", "last_checkpoint", "previous_checkpoint", "resolve_resume"]

_PRECISIONS = {"32-true", "32", "16-mixed", "bf16-mixed", "64-true", "bf16-true", "16-true"}


def _trainer_config(cfg: Any) -> TrainerConfig:
    if isinstance(cfg, TrainerConfig):
        return cfg
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(cfg, Mapping):
        known = {f.name for f in dataclasses.fields(TrainerConfig)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"unknown trainer config keys: {unknown}")
        return TrainerConfig(**cfg)
    raise TypeError(
        f"trainer config must be a TrainerConfig or a mapping, got {type(cfg).__name__}"
    )


def _devices(value: str) -> int | str | list[int]:
    text = str(value).strip()
    if text == "auto":
        return "auto"
    if "," in text:
        return [int(part) for part in text.split(",") if part.strip()]
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"trainer.devices must be 'auto', a count or ids like '0,1'; got {value!r}"
        ) from None


def _sync_batchnorm(cfg: TrainerConfig) -> bool:
    """SyncBatchNorm only where torch supports it: its CPU kernels do not exist, so a
    CPU DDP run (tests, laptops) keeps per-process BatchNorm instead of failing."""
    if not cfg.sync_batchnorm or cfg.accelerator == "cpu":
        return False
    return torch.cuda.is_available()


def last_checkpoint(run_dir: str | os.PathLike) -> Path:
    """``RUN_DIR/checkpoints/last.ckpt`` (it may not exist yet)."""
    return Path(run_dir) / "checkpoints" / LAST_NAME


def previous_checkpoint(run_dir: str | os.PathLike) -> Path:
    """``RUN_DIR/checkpoints/previous.ckpt``: the checkpoint ``last.ckpt`` replaced."""
    return Path(run_dir) / "checkpoints" / PREVIOUS_NAME


def _why_not_loaded(error: Exception) -> str:
    """A short reason from torch.load's error (its messages run over several lines)."""
    text = " ".join(str(error).split())
    marker = "WeightsUnpickler error:"
    if marker in text:  # garbage, or a pickle a weights-only load refuses
        detail = text.split(marker, 1)[1].split("Check the documentation")[0].strip()
        return f"not a weights-only pickle: {detail[:150]}".rstrip(": ")
    if isinstance(error, EOFError):
        return "the file is empty or cut short"
    if not text:
        return type(error).__name__
    if isinstance(error, pickle.UnpicklingError):  # a refusal that is one line already
        return text
    # e.g. "PytorchStreamReader failed reading zip archive: failed finding central directory"
    return text.split(". ")[0][:200]


def _load_problem(path: Path) -> tuple[int | None, str]:
    """``(global_step, "")`` when ``path`` loads weights-only, else ``(None, why not)``."""
    try:
        checkpoint = load_checkpoint(path)
    except Exception as error:  # a truncated zip, garbage bytes, a refused pickle, ...
        return None, _why_not_loaded(error)
    if not isinstance(checkpoint, dict):
        return None, f"it holds a {type(checkpoint).__name__}, not a checkpoint dict"
    return int(checkpoint.get("global_step", 0)), ""


def _candidates(resume: str, run_dir: str | os.PathLike) -> list[Path]:
    """The checkpoints ``trainer.resume`` names, in the order to try them (they may not
    exist for ``auto``)."""
    if resume in ("never", "none", ""):
        return []
    if resume == "auto":
        return [last_checkpoint(run_dir), previous_checkpoint(run_dir)]
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"trainer.resume={resume!r}: no such checkpoint")
    return [path]


def _resume_from(resume: str, run_dir: str | os.PathLike) -> tuple[Path, int] | None:
    """The checkpoint to resume from and its step (see :func:`resolve_resume`)."""
    candidates = _candidates(resume, run_dir)
    if not any(path.is_file() for path in candidates):
        return None
    problems = []
    for path in candidates:
        if not path.is_file():
            problems.append(f"{path} does not exist")
            continue
        step, problem = _load_problem(path)
        if step is not None:
            if problems:
                rank_zero_warn(
                    f"{'; '.join(problems)}: resuming from {path} (step {step}) instead; "
                    f"the steps after it are trained again"
                )
            return path, step
        problems.append(f"{path} does not load ({problem})")
    if resume != "auto":
        raise ConfigError(f"trainer.resume={resume}: the checkpoint does not load ({problem})")
    raise ConfigError(
        f"trainer.resume=auto: no checkpoint to resume from: {'; '.join(problems)}. "
        "Start the run anew with trainer.resume=never (it overwrites them), or name a "
        "good checkpoint with trainer.resume=PATH"
    )


def resolve_resume(resume: str, run_dir: str | os.PathLike, *, check: bool = True) -> Path | None:
    """The checkpoint to resume from.

    - ``auto``: ``RUN_DIR/checkpoints/last.ckpt``; when it does not load (truncated,
      corrupted) ``previous.ckpt``, with a warning naming both; None when neither exists;
    - ``never`` (or ``none``, empty): None;
    - anything else: that path (which must exist).

    ``check=False`` only looks at which files exist (no loading, no warning): whether a
    resume will be attempted.

    Raises: ``FileNotFoundError`` for a named checkpoint that does not exist;
    :class:`rq_core.config.ConfigError` (one line naming the files and why they do not
    load, and the choice ``trainer.resume=never``) when no candidate loads.
    """
    if not check:
        existing = [path for path in _candidates(resume, run_dir) if path.is_file()]
        return existing[0] if existing else None
    found = _resume_from(resume, run_dir)
    return None if found is None else found[0]


def build_trainer(
    cfg: TrainerConfig | Mapping[str, Any],
    run_dir: str | os.PathLike,
    *,
    config: Any = None,
    callbacks: list[Any] | None = None,
    resume_step: int | None = None,
    **trainer_kwargs: Any,
) -> Trainer:
    """A Lightning ``Trainer`` writing everything under ``run_dir``.

    - ``RUN_DIR/checkpoints/last.ckpt``: every ``cfg.checkpoint_every_n_steps`` steps and
      at every epoch end, atomically (:class:`AtomicCheckpointIO`, :class:`RunCheckpoint`);
    - ``RUN_DIR/metrics.csv`` (flat, :class:`MetricsCSVLogger`) and TensorBoard events in
      ``RUN_DIR/tensorboard/``;
    - a tqdm progress bar on rank 0.

    DDP, the world size and the node rank come from torchrun/SLURM environment variables
    through Lightning's cluster environments; ``strategy="auto"`` picks DDP for more than
    one process. ``config`` (the resolved app config) is stored in every checkpoint;
    ``trainer_kwargs`` go to ``lightning.Trainer`` unchanged (e.g. ``limit_val_batches``).
    """
    cfg = _trainer_config(cfg)
    if cfg.precision not in _PRECISIONS:
        raise ValueError(
            f"trainer.precision must be one of {sorted(_PRECISIONS)}, got {cfg.precision!r}"
        )
    if cfg.checkpoint_every_n_steps < 0:
        raise ValueError("trainer.checkpoint_every_n_steps must be >= 0")
    run_dir = Path(run_dir)
    plain_config = to_weights_only(config) if config is not None else None
    checkpoint = RunCheckpoint(run_dir / "checkpoints", cfg.checkpoint_every_n_steps, plain_config)
    all_callbacks: list[Any] = [checkpoint, *(callbacks or [])]
    loggers: list[Any] = [MetricsCSVLogger(run_dir, resume_step=resume_step)]
    if cfg.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
        all_callbacks.append(LearningRateMonitor(logging_interval="step"))
    if cfg.progress_bar:
        all_callbacks.append(TQDMProgressBar())
    return Trainer(
        default_root_dir=str(run_dir),
        accelerator=cfg.accelerator,
        devices=_devices(cfg.devices),
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=cfg.precision,
        max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps,
        log_every_n_steps=cfg.log_every_n_steps,
        deterministic=cfg.deterministic,
        sync_batchnorm=_sync_batchnorm(cfg),
        gradient_clip_val=cfg.gradient_clip_val,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        check_val_every_n_epoch=cfg.check_val_every_n_epoch,
        num_sanity_val_steps=cfg.num_sanity_val_steps,
        enable_progress_bar=cfg.progress_bar,
        enable_checkpointing=False,  # RunCheckpoint replaces Lightning's ModelCheckpoint
        logger=loggers,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        **trainer_kwargs,
    )


def fit(
    module: LightningModule,
    run_dir: str | os.PathLike,
    trainer_cfg: TrainerConfig | Mapping[str, Any],
    *,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    datamodule: Any = None,
    config: Any = None,
    callbacks: list[Any] | None = None,
    **trainer_kwargs: Any,
) -> Trainer:
    """Train ``module``; save ``RUN_DIR/config.yaml``; resume per ``trainer_cfg.resume``.

    Seeds every rank with ``seed + rank`` first (:func:`rq_core.seeding.seed_everything_per_rank`),
    so call ``fit`` after building the module (DDP broadcasts rank 0's weights anyway).
    Returns the trainer (``trainer.callback_metrics`` holds the last logged values).

    Example (``MyModule`` and ``loader`` are yours)::

        trainer = fit(MyModule(), "runs/exp1", TrainerConfig(max_epochs=10),
                      train_dataloaders=loader, config=cfg)
    """
    trainer_cfg = _trainer_config(trainer_cfg)
    run_dir = Path(run_dir)
    found = _resume_from(trainer_cfg.resume, run_dir)
    ckpt_path, resume_step = found if found is not None else (None, None)
    seed_everything_per_rank(trainer_cfg.seed)
    trainer = build_trainer(
        trainer_cfg,
        run_dir,
        config=config,
        callbacks=callbacks,
        resume_step=resume_step,
        **trainer_kwargs,
    )
    for callback in trainer.callbacks:
        if isinstance(callback, RunCheckpoint):
            # Which previous.ckpt to keep depends on where the run came from.
            callback.resumed_from = ckpt_path
    if config is not None and trainer.is_global_zero:
        from rq_core.config import save_config

        save_config(config, run_dir)
    trainer.fit(
        module,
        train_dataloaders=train_dataloaders,
        val_dataloaders=val_dataloaders,
        datamodule=datamodule,
        ckpt_path=str(ckpt_path) if ckpt_path is not None else None,
    )
    return trainer
