"""``rq-byol-a pretrain`` on 2 CPU processes (torchrun, gloo), both SIGKILLed right after a
mid-epoch and right after an epoch-end checkpoint, then launched again, ends with exactly
the state of an uninterrupted 2-process run: rank 0's weights and optimizer state, and each
rank's random streams and Mixup memory (the checkpoint carries them per rank).

20 clips over 2 ranks, batch 4 per rank: 2 steps per epoch; checkpoints every step and at
epoch ends: step 1 (1st, mid-epoch), 2 (2nd, epoch end), 3, 4, 5, 6 (the end).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_resume import COMMON, ROOT, assert_resumes_exactly, run, torchrun  # noqa: E402


@pytest.fixture(scope="module")
def command(tmp_path_factory) -> list[str]:
    from rq_audio.testing import write_tone_folder
    from rq_byol_a.cli import main

    data = tmp_path_factory.mktemp("byol-a-ddp-data")
    write_tone_folder(data / "audio", classes=2, per_split=(6, 2, 2))  # 20 one-second clips
    source = [
        "--config", str(ROOT / "apps/byol-a/configs/demo_quick.yaml"),
        f"data.pretrain.audio_dir={data / 'audio'}", f"data.pretrain.cache={data / 'pretrain.h5'}",
    ]  # fmt: skip
    main(["prepare", *source, f"run_dir={data / 'prepare'}"])  # the cache, in one process
    return [
        *torchrun("rq_byol_a.cli"), "pretrain", *source, "data.batch_size=4",
        "augmentations=[{name: mixup, ratio: 0.4, memory_size: 16}, {name: random_resize_crop}]",
        "trainer.devices=2", "trainer.strategy=ddp", "trainer.sync_batchnorm=false",
        "trainer.max_steps=6", "trainer.checkpoint_every_n_steps=1", *COMMON,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(command, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("byol-a-ddp") / "uninterrupted"
    run(command, run_dir)
    return run_dir


@pytest.mark.slow
@pytest.mark.ddp
@pytest.mark.parametrize(
    ("kill_after", "killed_at_step"), [(1, 1), (2, 2)], ids=["mid-epoch", "epoch-end"]
)
def test_two_process_pretrain_killed_and_rerun_equals_the_uninterrupted_run(
    command, reference, tmp_path, kill_after, killed_at_step
):
    assert_resumes_exactly(command, reference, tmp_path / "run", kill_after, killed_at_step)
    from rq_core.training import load_checkpoint

    checkpoint = load_checkpoint(reference / "checkpoints" / "last.ckpt")
    assert len(checkpoint["rng_states"]) == 2 and len(checkpoint["rank_states"]) == 2
    memories = [rank["augment.blocks.0"]["memory"] for rank in checkpoint["rank_states"]]
    assert not memories[0].equal(memories[1]), "each rank's own Mixup memory is compared"
