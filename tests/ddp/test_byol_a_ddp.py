"""rq-byol-a pretrain on 2 CPU processes (torchrun, gloo): same weights on both ranks (online
and EMA target networks), and a second launch resumes from the run's checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_app import ROOT, assert_ranks_identical, assert_resumed, torchrun_pretrain  # noqa: E402

CONFIG = ROOT / "apps/byol-a/configs/demo_quick.yaml"


@pytest.mark.ddp
def test_byol_a_pretrain_under_torchrun_matches_ranks_and_resumes(tmp_path):
    from rq_audio.testing import write_tone_folder
    from rq_byol_a.cli import main

    audio = tmp_path / "audio"
    write_tone_folder(audio, classes=2, per_split=(6, 2, 2))  # 20 one-second clips
    common = [
        "--config", str(CONFIG), f"data.pretrain.audio_dir={audio}",
        f"data.pretrain.cache={tmp_path / 'pretrain.h5'}", "data.batch_size=4",
    ]  # fmt: skip
    main(["prepare", *common, f"run_dir={tmp_path / 'prepare'}"])  # the cache, in one process
    run_dir = tmp_path / "run"
    torchrun_pretrain("rq_byol_a.cli", [*common, "trainer.max_steps=2"], run_dir)
    before = assert_ranks_identical(run_dir, steps=2)
    # A finished run leaves encoder.pt and `pretrain` then skips; a preempted run has none.
    (run_dir / "checkpoints/encoder.pt").unlink()
    output = torchrun_pretrain("rq_byol_a.cli", [*common, "trainer.max_steps=4"], run_dir)
    after = assert_ranks_identical(run_dir, steps=4)
    assert_resumed(output, run_dir, before, after, steps=4)
    assert (run_dir / "checkpoints/encoder.pt").is_file()
