"""``random``: no pretraining -- transfer from the encoder at its random initialization."""

from __future__ import annotations

from rq_dabs.algorithms.base import PretrainingAlgorithm

__all__ = ["Scratch"]


class Scratch(PretrainingAlgorithm):
    """The scratch baseline (DABS and the RQ paper's Table 9 "scratch" row)."""

    name = "random"
    has_objective = False
