"""``RunCheckpoint``: ``RUN_DIR/checkpoints/last.ckpt`` every N steps and at every epoch end
(the one before kept as ``previous.ckpt``), with per-rank RNG states and per-rank module
state, the EMA model and the resolved config; exact resume."""

from __future__ import annotations

import os
import random
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from rq_core.training.resumable_sampler import ResumableSampler

__all__ = [
    "KILL_AFTER_CHECKPOINT_ENV",
    "LAST_NAME",
    "PREVIOUS_NAME",
    "RunCheckpoint",
    "capture_rng_states",
    "restore_rng_states",
]

LAST_NAME = "last.ckpt"
PREVIOUS_NAME = "previous.ckpt"

# Test hook: with this variable set to N, a process SIGKILLs itself right after writing its
# N-th checkpoint (counted per process, on every rank), so that kill-and-resume tests stop a
# real run at an exact checkpoint. Inert when the variable is unset.
KILL_AFTER_CHECKPOINT_ENV = "RQ_TEST_SIGKILL_AFTER_CHECKPOINT"


def capture_rng_states() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states, as weights-only-safe values."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "python": [version, list(python_state), gauss_next],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_states`."""
    version, python_state, gauss_next = states["python"]
    random.setstate((version, tuple(python_state), gauss_next))
    numpy_state = states["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _train_loaders(trainer: Trainer) -> list[Any]:
    loaders = trainer.train_dataloader
    if loaders is None:
        return []
    if hasattr(loaders, "flattened"):
        return list(loaders.flattened)
    if isinstance(loaders, dict):
        return list(loaders.values())
    if isinstance(loaders, list | tuple):
        return list(loaders)
    return [loaders]


def _resumable_sampler(loader: Any) -> tuple[ResumableSampler | None, int]:
    """The loader's ResumableSampler (direct or inside its batch sampler) and batch size."""
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    batch_size = getattr(loader, "batch_size", None) or getattr(batch_sampler, "batch_size", None)
    if not isinstance(sampler, ResumableSampler):
        sampler = getattr(batch_sampler, "sampler", None)
    if isinstance(sampler, ResumableSampler) and batch_size:
        return sampler, int(batch_size)
    return None, 0


def _require_resumable_loaders(trainer: Trainer) -> None:
    """Refuse a training loader whose order a checkpoint cannot continue."""
    for loader in _train_loaders(trainer):
        sampler, _ = _resumable_sampler(loader)
        if sampler is None:
            used = getattr(loader, "sampler", None)
            raise ValueError(
                f"the training loader draws its order from {type(used).__name__}, not "
                "rq_core.training.ResumableSampler: a run resumed from a mid-epoch checkpoint "
                "could not continue its epoch. Build it with rq_core.training.resumable_loader "
                "(or pass sampler=ResumableSampler(dataset, seed=...) and a batch_size)"
            )


def _rank_local_modules(module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Submodules holding state that differs per rank and is not in their state_dict
    (they define ``rank_state_dict()`` and ``load_rank_state_dict(state)``)."""
    return {
        name: sub
        for name, sub in module.named_modules()
        if callable(getattr(sub, "rank_state_dict", None))
        and callable(getattr(sub, "load_rank_state_dict", None))
    }


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value


def _zero_current(progress: dict[str, Any]) -> None:
    """Set the ``current`` (this epoch's) counters of a saved Lightning progress to 0."""
    progress["current"] = {key: 0 for key in progress["current"]}


def _as_epoch_boundary(fit_loop_state: dict[str, Any], epoch_finished: bool) -> None:
    """Write a saved fit loop as the state between two epochs that Lightning resumes right.

    Our epoch-end saves happen after the epoch's metrics are logged: when the next epoch
    starts, or when training ends. Lightning's own counters there do not resume right in
    every case (from an ``on_train_epoch_end`` save with ``max_steps`` set, it runs one
    more batch in the finished epoch and starts the next epoch's order one epoch ahead), so
    the checkpoint holds the state Lightning builds itself between two epochs:

    - ``epoch_finished``: epochs ``0..e`` done, epoch ``e + 1`` not started, no batch
      counted in it;
    - otherwise (``max_steps`` ended training before the epoch's last batch): epoch ``e``
      started and not processed, its batches so far counted, so that a run resumed with a
      larger ``max_steps`` finishes that epoch instead of skipping the rest of it.
    """
    for counter in ("total", "current"):
        epoch = fit_loop_state["epoch_progress"][counter]
        done = epoch["completed"]
        if epoch_finished:
            epoch.update(ready=done, started=done, processed=done, completed=done)
        else:
            epoch.update(ready=done, started=done, processed=done - 1, completed=done - 1)
    batches = fit_loop_state["epoch_loop.batch_progress"]
    batches["is_last_batch"] = False
    if epoch_finished:
        _zero_current(batches)
        _zero_current(fit_loop_state["epoch_loop.scheduler_progress"])
        optimizer = fit_loop_state["epoch_loop.automatic_optimization.optim_progress"]
        _zero_current(optimizer["optimizer"]["step"])
        _zero_current(optimizer["optimizer"]["zero_grad"])


class RunCheckpoint(Callback):
    """Save ``dirpath/last.ckpt`` every ``every_n_steps`` optimizer steps and at each epoch
    end; restore RNG states and the data position on resume.

    Beyond Lightning's own content (``state_dict``, ``optimizer_states``,
    ``lr_schedulers``, the AMP scaler, ``global_step``, ``epoch``, loop progress), the
    checkpoint holds:

    - ``rng_states``: one entry per rank (Python, NumPy, torch, CUDA), restored per rank;
    - ``rank_states``: one entry per rank, ``{submodule name: state}`` for the submodules
      whose state differs per rank and is not in their ``state_dict`` (those defining
      ``rank_state_dict()`` / ``load_rank_state_dict(state)``, e.g. Mixup's memory of past
      inputs), restored per rank;
    - ``config``: the resolved run config (a plain dict);
    - ``model_ema``: ``module.model_ema.state_dict()`` when the module has a ``model_ema``
      submodule (its weights are in ``state_dict`` too; this is the handy export).

    Writing is atomic through :class:`rq_core.training.AtomicCheckpointIO`; before each
    write the current ``last.ckpt`` is kept as ``previous.ckpt`` (a hard link renamed into
    place, so ``last.ckpt`` never goes missing), unless the run resumed from
    ``previous.ckpt`` because ``last.ckpt`` did not load. At the start, temporary files a
    killed write left behind (``.last.ckpt.*.tmp``) are removed.

    The training loader must draw its order from a
    :class:`rq_core.training.ResumableSampler` (see
    :func:`rq_core.training.resumable_loader`): training refuses to start otherwise, since
    a mid-epoch checkpoint could not continue its epoch.

    Test hook: with the environment variable ``RQ_TEST_SIGKILL_AFTER_CHECKPOINT=N`` a
    process SIGKILLs itself right after writing its N-th checkpoint (every rank counts its
    own); unset, it does nothing.
    """

    def __init__(
        self, dirpath: str | os.PathLike, every_n_steps: int, config: dict[str, Any] | None = None
    ) -> None:
        if every_n_steps < 0:
            raise ValueError(
                f"every_n_steps must be >= 0 (0: epoch ends only), got {every_n_steps}"
            )
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.config = config
        self._last_saved_step = -1
        self._save_pending = False
        self._saving_at_batch_start = False
        self._epoch_end_pending = False
        self._epoch_boundary: bool | None = None  # epoch finished, when saving between epochs
        self._rng_to_restore: dict[str, Any] | None = None
        self._rank_state_to_restore: dict[str, Any] | None = None
        self._num_saved = 0
        # The checkpoint this run resumed from (set by rq_core.training.fit): it decides
        # what the first save does with the files already in dirpath (see _keep_previous).
        self.resumed_from: Path | None = None

    @property
    def last_path(self) -> Path:
        return self.dirpath / LAST_NAME

    @property
    def previous_path(self) -> Path:
        return self.dirpath / PREVIOUS_NAME

    def _keep_previous(self) -> None:
        """``last.ckpt`` -> ``previous.ckpt``, atomically, leaving ``last.ckpt`` in place.

        Only a ``last.ckpt`` of this run's own history is kept. Before this process's first
        save, that is one it resumed from; a run that resumed from ``previous.ckpt`` (its
        ``last.ckpt`` did not load) keeps that one; a fresh run, or one started from another
        checkpoint, drops a ``previous.ckpt`` left by an earlier run in the directory.
        """
        origin = self.resumed_from.resolve() if self.resumed_from is not None else None
        if self._num_saved == 0 and origin != self.last_path.resolve():
            if origin != self.previous_path.resolve():
                self.previous_path.unlink(missing_ok=True)
            return
        if not self.last_path.is_file():
            return
        temporary = self.dirpath / f".{PREVIOUS_NAME}.{os.getpid()}.tmp"
        temporary.unlink(missing_ok=True)
        try:
            os.link(self.last_path, temporary)
        except OSError:  # a filesystem without hard links: copy instead
            shutil.copyfile(self.last_path, temporary)
        os.replace(temporary, self.previous_path)

    def _remove_stray_temporaries(self) -> None:
        """Temporary files of writes a kill interrupted (``.last.ckpt.XXXX.tmp``)."""
        for name in (LAST_NAME, PREVIOUS_NAME):
            for stray in self.dirpath.glob(f".{name}.*.tmp"):
                stray.unlink(missing_ok=True)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.is_global_zero and self.dirpath.is_dir():
            self._remove_stray_temporaries()

    def _save(self, trainer: Trainer) -> None:
        if trainer.is_global_zero:
            self._keep_previous()
        # weights_only=False: the full training state (optimizer, loops, ...), not weights only.
        trainer.save_checkpoint(self.last_path, weights_only=False)
        self._last_saved_step = trainer.global_step
        self._num_saved += 1
        if os.environ.get(KILL_AFTER_CHECKPOINT_ENV) == str(self._num_saved):
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            # The epoch-end save follows at once. A save here would also be one Lightning
            # resumes wrongly (it skips the next epoch), so leave it to the epoch end.
            return
        step = trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0:
            if step != self._last_saved_step:  # accumulated batches share a step
                # Saved when the next batch starts: Lightning calls callbacks' batch-end
                # hooks before the module's, where methods update their EMA teacher, and
                # that update belongs in the checkpoint.
                self._save_pending = True

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        if self._save_pending:
            self._save_pending = False
            self._saving_at_batch_start = True
            try:
                self._save(trainer)
            finally:
                self._saving_at_batch_start = False

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Saved when the next epoch starts or training ends: Lightning logs the epoch's
        # metrics (``*_epoch`` columns) after this hook, and a kill right after the save
        # must not lose them.
        self._save_pending = False  # the epoch-end save covers it
        self._epoch_end_pending = True

    def _save_epoch_end(self, trainer: Trainer) -> None:
        self._epoch_end_pending = False
        batches = trainer.fit_loop.epoch_loop.batch_progress
        self._epoch_boundary = (
            batches.is_last_batch or batches.current.ready >= trainer.num_training_batches
        )
        try:
            self._save(trainer)
        finally:
            self._epoch_boundary = None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._epoch_end_pending:
            self._save_epoch_end(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._epoch_end_pending:
            self._save_epoch_end(trainer)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._saving_at_batch_start:
            # Lightning adds 1 to this counter on restore, assuming the save happened in
            # on_train_batch_end, before its increment; ours comes after it.
            epoch_loop_state = checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]
            epoch_loop_state["_batches_that_stepped"] -= 1
        if self._epoch_boundary is not None:
            _as_epoch_boundary(checkpoint["loops"]["fit_loop"], self._epoch_boundary)
        local = {
            "rng": capture_rng_states(),
            "modules": {
                name: _to_cpu(sub.rank_state_dict())
                for name, sub in _rank_local_modules(pl_module).items()
            },
        }
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # save_checkpoint runs on every rank; only rank 0 writes, so collect all ranks'.
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, local)
        else:
            gathered = [local]
        checkpoint["rng_states"] = [rank["rng"] for rank in gathered]
        checkpoint["rank_states"] = [rank["modules"] for rank in gathered]
        if self.config is not None:
            checkpoint["config"] = self.config
        model_ema = getattr(pl_module, "model_ema", None)
        if isinstance(model_ema, torch.nn.Module):
            checkpoint["model_ema"] = model_ema.state_dict()

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        per_rank = checkpoint.get("rng_states") or []
        if len(per_rank) == trainer.world_size:
            self._rng_to_restore = per_rank[trainer.global_rank]
        elif per_rank:
            rank_zero_warn(
                f"checkpoint holds RNG states of {len(per_rank)} ranks but this run has "
                f"{trainer.world_size}; random streams start afresh (per-rank seeds)"
            )
        rank_states = checkpoint.get("rank_states") or []
        if len(rank_states) == trainer.world_size:
            self._rank_state_to_restore = rank_states[trainer.global_rank]
        elif any(rank_states):
            rank_zero_warn(
                f"checkpoint holds per-rank module state of {len(rank_states)} ranks but this "
                f"run has {trainer.world_size}; that state ({sorted(rank_states[0])}) "
                "starts afresh"
            )
        self._last_saved_step = int(checkpoint.get("global_step", -1))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        _require_resumable_loaders(trainer)
        if self._rank_state_to_restore is not None:
            modules = _rank_local_modules(pl_module)
            for name, state in self._rank_state_to_restore.items():
                if name in modules:
                    modules[name].load_rank_state_dict(state)
            self._rank_state_to_restore = None
        if self._rng_to_restore is None:
            return
        fit_loop = trainer.fit_loop
        progress = fit_loop.epoch_loop.batch_progress.current
        mid_epoch = fit_loop.restarted_mid_epoch or (
            0 < progress.processed < trainer.num_training_batches
        )
        workers = False
        for loader in _train_loaders(trainer):
            sampler, batch_size = _resumable_sampler(loader)
            # Lightning sets the sampler's epoch only after this hook, and a loader with
            # workers starts drawing indices as soon as its iterator exists (Lightning made
            # one already): set the epoch (and the skip) here, then start a fresh iterator.
            sampler.set_epoch(fit_loop.epoch_progress.current.processed)
            if mid_epoch:
                sampler.skip_next(progress.processed * batch_size)
            workers = workers or getattr(loader, "num_workers", 0) > 0
        if mid_epoch and workers:
            iter(fit_loop._data_fetcher)
        # Creating a DataLoader iterator draws its base seed from the global RNG. Mid-epoch,
        # the uninterrupted run made that draw before this checkpoint was written: restore
        # after any new iterator. At an epoch boundary it made the draw after the save, but
        # Lightning created this run's iterator before the restore: make a new one after.
        restore_rng_states(self._rng_to_restore)
        self._rng_to_restore = None
        if not mid_epoch and fit_loop._data_fetcher is not None:
            iter(fit_loop._data_fetcher)
