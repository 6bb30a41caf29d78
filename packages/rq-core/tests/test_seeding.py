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


def test_negative_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        seed_everything_per_rank(-1)
