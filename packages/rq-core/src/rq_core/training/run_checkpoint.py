"""``RunCheckpoint``: ``RUN_DIR/checkpoints/last.ckpt`` every N steps and at every epoch end,
with per-rank RNG states, the EMA model and the resolved config; exact resume."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from rq_core.training.resumable_sampler import ResumableSampler

__all__ = ["KILL_AFTER_CHECKPOINT_ENV", "RunCheckpoint", "capture_rng_states", "restore_rng_states"]

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


class RunCheckpoint(Callback):
    """Save ``dirpath/last.ckpt`` every ``every_n_steps`` optimizer steps and at each epoch
    end; restore RNG states and the data position on resume.

    Beyond Lightning's own content (``state_dict``, ``optimizer_states``,
    ``lr_schedulers``, the AMP scaler, ``global_step``, ``epoch``, loop progress), the
    checkpoint holds:

    - ``rng_states``: one entry per rank (Python, NumPy, torch, CUDA), restored per rank;
    - ``config``: the resolved run config (a plain dict);
    - ``model_ema``: ``module.model_ema.state_dict()`` when the module has a ``model_ema``
      submodule (its weights are in ``state_dict`` too; this is the handy export).

    Writing is atomic through :class:`rq_core.training.AtomicCheckpointIO`.

    Exact resume from a mid-epoch checkpoint needs the training loader to draw its order
    from a :class:`rq_core.training.ResumableSampler`; with another sampler the
    interrupted epoch restarts from its first batch (Lightning's behaviour, with a
    warning).
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
        self._rng_to_restore: dict[str, Any] | None = None
        self._num_saved = 0

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def _save(self, trainer: Trainer) -> None:
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
        self._save_pending = False  # this save covers it
        self._save(trainer)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._saving_at_batch_start:
            # Lightning adds 1 to this counter on restore, assuming the save happened in
            # on_train_batch_end, before its increment; ours comes after it.
            epoch_loop_state = checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]
            epoch_loop_state["_batches_that_stepped"] -= 1
        states = capture_rng_states()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # save_checkpoint runs on every rank; only rank 0 writes, so collect all streams.
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, states)
            checkpoint["rng_states"] = gathered
        else:
            checkpoint["rng_states"] = [states]
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
        self._last_saved_step = int(checkpoint.get("global_step", -1))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._rng_to_restore is None:
            return
        fit_loop = trainer.fit_loop
        progress = fit_loop.epoch_loop.batch_progress.current
        mid_epoch = fit_loop.restarted_mid_epoch or (
            0 < progress.processed < trainer.num_training_batches
        )
        if mid_epoch:
            for loader in _train_loaders(trainer):
                sampler, batch_size = _resumable_sampler(loader)
                if sampler is not None:
                    sampler.set_epoch(trainer.current_epoch)
                    sampler.skip_next(progress.processed * batch_size)
                    if getattr(loader, "num_workers", 0) > 0:
                        # Workers fetched indices when Lightning created the iterator,
                        # before the skip was known: start a fresh one.
                        iter(fit_loop._data_fetcher)
        # Creating a DataLoader iterator draws its base seed from the global RNG. Mid-epoch,
        # the uninterrupted run made that draw before this checkpoint was written: restore
        # after any new iterator. At an epoch boundary it made the draw after the save, but
        # Lightning created this run's iterator before the restore: make a new one after.
        restore_rng_states(self._rng_to_restore)
        self._rng_to_restore = None
        if not mid_epoch and fit_loop._data_fetcher is not None:
            iter(fit_loop._data_fetcher)
