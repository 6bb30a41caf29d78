"""Downstream tasks of the paper's Table 8 and their clip durations (EVAR evar/ds_tasks.py).

Durations in seconds are what EVAR reads from each clip (``unit_sec``): NSynth 4.0,
UrbanSound8K 4.0 (10 folds), VoxCeleb1 8.2, VoxForge 5.8, Speech Commands V2 1.0 (SPCV2/12
uses the same clips). The metadata.csv files are written by ``data_scripts/audio``.

>>> TASKS["nsynth"].unit_sec
4.0
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TASKS", "TaskSpec"]


@dataclass(frozen=True)
class TaskSpec:
    """A linear-evaluation task: its name, clip duration and whether it is cross-validated."""

    name: str
    unit_sec: float
    num_folds: int = 1  # > 1: leave-one-fold-out over the metadata's `fold` column


TASKS: dict[str, TaskSpec] = {
    "nsynth": TaskSpec("nsynth", 4.0),
    "us8k": TaskSpec("us8k", 4.0, num_folds=10),
    "vc1": TaskSpec("vc1", 8.2),
    "voxforge": TaskSpec("voxforge", 5.8),
    "spcv2": TaskSpec("spcv2", 1.0),
    "spcv2_12": TaskSpec("spcv2_12", 1.0),
}
