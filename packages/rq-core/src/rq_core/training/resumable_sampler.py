"""A distributed sampler that can resume in the middle of an epoch, and the training
loader built on it."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sized
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["ResumableSampler", "SeededIndex", "resumable_loader", "sample_seed"]


class SeededIndex(NamedTuple):
    """A dataset index with the seed of that sample's random draws in this epoch.

    What :class:`ResumableSampler` yields with ``sample_seeds=True``: a dataset that draws
    random numbers in ``__getitem__`` (a random crop) seeds them with ``seed``, so its draws
    depend on the epoch and the sample only, not on which DataLoader worker loads it or on
    how many samples that worker loaded before (both change when a run resumes).
    """

    index: int
    seed: int


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` in ``epoch`` of a sampler seeded with ``seed``.

    >>> sample_seed(0, 1, 7) == sample_seed(0, 1, 7) != sample_seed(0, 2, 7)
    True
    """
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    for size_var, rank_var in (("WORLD_SIZE", "RANK"), ("SLURM_NTASKS", "SLURM_PROCID")):
        if size_var in os.environ and rank_var in os.environ:
            return int(os.environ[size_var]), int(os.environ[rank_var])
    return 1, 0


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` whose next epoch can start after the first ``n`` samples.

    The order of epoch e is a permutation drawn from ``seed + e`` (as DistributedSampler),
    so it is the same in a resumed run. After a mid-epoch resume, the training callback
    (:class:`rq_core.training.RunCheckpoint`) calls :meth:`skip_next` with the number of
    samples this rank had already consumed, and the epoch continues where it stopped.
    Lightning keeps it as it is under DDP (it is a DistributedSampler) and calls
    ``set_epoch`` every epoch. The world size and rank come from torch.distributed, or
    torchrun/SLURM environment variables when the process group does not exist yet, and are
    read again at every iteration unless ``num_replicas``/``rank`` are given.

    With ``sample_seeds=True`` it yields :class:`SeededIndex` pairs ``(index, seed)``
    instead, the seed drawn from ``(seed, epoch, index)``: the random draws a dataset makes
    for a sample (see :class:`SeededIndex`) are then the same in a resumed run and with any
    number of workers.

    Shapes: yields dataset indices; ``len`` is this rank's samples per epoch.

    >>> sampler = ResumableSampler(range(10), shuffle=False)
    >>> sampler.skip_next(4)
    >>> list(sampler)
    [4, 5, 6, 7, 8, 9]
    >>> list(sampler)[:3]
    [0, 1, 2]
    """

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
        sample_seeds: bool = False,
    ) -> None:
        world_size, world_rank = _world()
        super().__init__(
            dataset,
            num_replicas=world_size if num_replicas is None else num_replicas,
            rank=world_rank if rank is None else rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self._skip = 0
        self.sample_seeds = sample_seeds
        # Without explicit values, the world is read again when iterating: a loader built
        # before the process group exists (Lightning's own launcher starts the other
        # ranks after the app built its data) still gets its rank's share.
        self._world_is_fixed = num_replicas is not None or rank is not None

    def _refresh_world(self) -> None:
        if self._world_is_fixed:
            return
        world_size, world_rank = _world()
        if (world_size, world_rank) == (self.num_replicas, self.rank):
            return
        self.num_replicas, self.rank = world_size, world_rank
        size = len(self.dataset)  # type: ignore[arg-type]
        # DistributedSampler's own arithmetic.
        if self.drop_last and size % world_size != 0:
            self.num_samples = math.ceil((size - world_size) / world_size)
        else:
            self.num_samples = math.ceil(size / world_size)
        self.total_size = self.num_samples * world_size

    def __len__(self) -> int:
        self._refresh_world()
        return self.num_samples

    def skip_next(self, num_samples: int) -> None:
        """Make the next iteration start at position ``num_samples`` of this rank's order."""
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        self._skip = num_samples

    def __iter__(self) -> Iterator[int] | Iterator[SeededIndex]:
        self._refresh_world()
        indices = list(super().__iter__())
        skip, self._skip = self._skip, 0
        if self.sample_seeds:
            return iter(
                SeededIndex(i, sample_seed(self.seed, self.epoch, i)) for i in indices[skip:]
            )
        return iter(indices[skip:])


def resumable_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    sample_seeds: bool = False,
    **loader_kwargs: Any,
) -> DataLoader:
    """The training loader :func:`rq_core.training.fit` needs: its order comes from a
    :class:`ResumableSampler` (``seed``, ``shuffle``, ``drop_last``, ``sample_seeds`` go
    to it), so a run resumed from a mid-epoch checkpoint continues the interrupted epoch.

    Workers persist across epochs (``num_workers > 0``); ``loader_kwargs`` (``collate_fn``,
    ``pin_memory``, ...) go to the ``DataLoader``. ``batch_size`` is per process.

    >>> loader = resumable_loader(list(range(10)), 4, seed=0, shuffle=False)
    >>> [batch.tolist() for batch in loader]
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    sampler = ResumableSampler(
        dataset, shuffle=shuffle, seed=seed, drop_last=drop_last, sample_seeds=sample_seeds
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        **loader_kwargs,
    )
