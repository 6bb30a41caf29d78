"""``rq-dabs pretrain`` killed (SIGKILL) right after a mid-epoch and right after an
epoch-end checkpoint, then run again, ends with exactly the state of an uninterrupted run.

digits_images (built offline from scikit-learn's digits, 1078 training images), batch 256:
4 steps per epoch; RQ-SimCLR draws its quantizations from the global RNG in the training
step. Checkpoints every 3 steps and at epoch ends: step 3 (1st), 4 (2nd, epoch end), 6, 8,
9, 10 (the end).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_resume import COMMON, ROOT, assert_resumes_exactly, console_script, run  # noqa: E402


@pytest.fixture(scope="module")
def command(tmp_path_factory) -> list[str]:
    from rq_dabs.data.embedded import build_embedded_domain

    data_root = tmp_path_factory.mktemp("dabs-data")
    assert build_embedded_domain("digits_images", data_root) is not None
    return [
        console_script("rq-dabs"), "pretrain",
        "--config", str(ROOT / "apps/dabs/configs/demo_quick.yaml"), f"data_root={data_root}",
        "domain=digits_images", "algorithm=rq", "batch_size=256", "threads=1",
        "trainer.devices=1", "trainer.max_steps=10", "trainer.checkpoint_every_n_steps=3",
        *COMMON,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(command, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("dabs") / "uninterrupted"
    run(command, run_dir)
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_after", "killed_at_step"), [(1, 3), (2, 4)], ids=["mid-epoch", "epoch-end"]
)
def test_dabs_pretrain_killed_and_rerun_equals_the_uninterrupted_run(
    command, reference, tmp_path, kill_after, killed_at_step
):
    assert_resumes_exactly(command, reference, tmp_path / "run", kill_after, killed_at_step)
