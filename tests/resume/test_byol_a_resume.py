"""``rq-byol-a pretrain`` killed (SIGKILL) right after a mid-epoch and right after an
epoch-end checkpoint, then run again, ends with exactly the state of an uninterrupted run.

The chain holds every kind of random draw BYOL-A makes: Mixup (a memory of past inputs per
process), random resized crops and RQ (global RNG, in the training step), and random clip
crops in two DataLoader workers. 20 clips, batch 4: 5 steps per epoch; checkpoints every 2
steps and at epoch ends: step 2 (1st), 4 (2nd), 5 (3rd, epoch end), 6, 8 (the end).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_resume import COMMON, ROOT, assert_resumes_exactly, console_script, run  # noqa: E402

CHAIN = (
    "augmentations=[{name: mixup, ratio: 0.4, memory_size: 16}, {name: random_resize_crop}, "
    "{name: rq, num_bins: 5}]"
)


@pytest.fixture(scope="module")
def command(tmp_path_factory) -> list[str]:
    from rq_audio.testing import write_tone_folder

    data = tmp_path_factory.mktemp("byol-a-data")
    write_tone_folder(data / "audio", classes=2, per_split=(6, 2, 2))  # 20 one-second clips
    return [
        console_script("rq-byol-a"), "pretrain",
        "--config", str(ROOT / "apps/byol-a/configs/demo_quick.yaml"),
        f"data.pretrain.audio_dir={data / 'audio'}", f"data.pretrain.cache={data / 'pretrain.h5'}",
        "data.batch_size=4", "data.num_workers=2", CHAIN, "trainer.devices=1",
        "trainer.max_steps=8", "trainer.checkpoint_every_n_steps=2", *COMMON,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(command, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("byol-a") / "uninterrupted"
    run(command, run_dir)
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_after", "killed_at_step"), [(1, 2), (3, 5)], ids=["mid-epoch", "epoch-end"]
)
def test_byol_a_pretrain_killed_and_rerun_equals_the_uninterrupted_run(
    command, reference, tmp_path, kill_after, killed_at_step
):
    assert_resumes_exactly(command, reference, tmp_path / "run", kill_after, killed_at_step)
