"""``rq-mid-net pretrain`` killed (SIGKILL) right after a mid-epoch and right after an
epoch-end checkpoint, then run again, ends with exactly the state of an uninterrupted run.

24 procedural shapes, batch 4: 6 steps per epoch, 2 epochs (epoch-based, unlike the other
apps' max_steps runs); checkpoints every 4 steps and at epoch ends: step 4 (1st), 6 (2nd,
epoch end), 8, 12 (the end). Augmentation draws come from a generator seeded per step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_resume import COMMON, ROOT, assert_resumes_exactly, console_script, run  # noqa: E402


@pytest.fixture(scope="module")
def command(tmp_path_factory) -> list[str]:
    cache = tmp_path_factory.mktemp("mid-net-cache")
    return [
        console_script("rq-mid-net"), "pretrain",
        "--config", str(ROOT / "apps/mid-net/configs/demo_quick.yaml"), f"cache_dir={cache}",
        "data.num_points=256", "data.shapes_per_class=4", "data.splits=[train,valid,test]",
        "optim.batch_size=4", "trainer.devices=1", "trainer.max_epochs=2",
        "trainer.checkpoint_every_n_steps=4", *COMMON,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(command, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("mid-net") / "uninterrupted"
    run(command, run_dir)
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_after", "killed_at_step"), [(1, 4), (2, 6)], ids=["mid-epoch", "epoch-end"]
)
def test_mid_net_pretrain_killed_and_rerun_equals_the_uninterrupted_run(
    command, reference, tmp_path, kill_after, killed_at_step
):
    assert_resumes_exactly(command, reference, tmp_path / "run", kill_after, killed_at_step)
