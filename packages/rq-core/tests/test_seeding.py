import random

import numpy as np
import pytest
import torch
from rq_core.seeding import process_rank, seed_everything_per_rank


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_same_seed_same_streams_and_rank_offsets_the_seed(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert seed_everything_per_rank(5) == 5
    first = _draws()
    seed_everything_per_rank(5)
    assert _draws() == first
    monkeypatch.setenv("RANK", "3")
    assert process_rank() == 3
    assert seed_everything_per_rank(5) == 8
    assert _draws() != first
    monkeypatch.delenv("RANK")
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert seed_everything_per_rank(5) == 6


def test_lightnings_own_launcher_gives_each_process_its_seed(monkeypatch):
    # `trainer.devices=2` without torchrun: Lightning starts the second process with
    # LOCAL_RANK=1 and no RANK; it must not draw the same augmentations as rank 0.
    for name in ("RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert seed_everything_per_rank(5) == 6


def test_negative_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        seed_everything_per_rank(-1)
