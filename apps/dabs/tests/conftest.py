"""Tiny settings for the rq-dabs CLI tests: a 1-layer transformer, a few steps, and a data
root in the test's tmp folder with the embedded domains prebuilt without network (BasicMotions
from a tiny .ts built here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

TINY = [
    "model.dim=32",
    "model.depth=1",
    "model.heads=2",
    "model.dim_head=16",
    "model.mlp_dim=64",
    "model.out_dim=16",
    "batch_size=16",
    "threads=1",
    "trainer.max_steps=3",
    "trainer.progress_bar=false",
    "trainer.tensorboard=false",
    "trainer.log_every_n_steps=1",
    "trainer.accelerator=cpu",
    "trainer.checkpoint_every_n_steps=0",
    "transfer.epochs=3",
    "transfer.seeds=[0]",
    "transfer.batch_size=256",
]


def tiny_basic_motions_text(n_per_class: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    names = ["Standing", "Running", "Walking", "Badminton"]
    lines = [f"@classLabel true {' '.join(names)}", "@data"]
    for c, name in enumerate(names):
        for _ in range(n_per_class):
            lines.append(
                ":".join(",".join(f"{v:.3f}" for v in rng.normal(c, 1, 100)) for _ in range(6))
                + f":{name}"
            )
    return "\n".join(lines) + "\n"


@pytest.fixture
def data_root(tmp_path) -> Path:
    from rq_dabs.data.embedded import BasicMotionsSensor

    root = tmp_path / "data"
    BasicMotionsSensor.build(
        root, ts_texts=(tiny_basic_motions_text(10, 0), tiny_basic_motions_text(3, 1))
    )
    return root


@pytest.fixture
def tiny(data_root) -> list[str]:
    return [*TINY, f"data_root={data_root}"]
