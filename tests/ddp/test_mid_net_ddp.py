"""rq-mid-net pretrain on 2 CPU processes (torchrun, gloo): same weights on both ranks, and a
second launch resumes from the run's checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_app import ROOT, assert_ranks_identical, assert_resumed, torchrun_pretrain  # noqa: E402

CONFIG = ROOT / "apps/mid-net/configs/demo_quick.yaml"


@pytest.mark.ddp
def test_mid_net_pretrain_under_torchrun_matches_ranks_and_resumes(tmp_path):
    from rq_mid_net.cli import main

    common = ["--config", str(CONFIG), f"cache_dir={tmp_path / 'cache'}", "trainer.max_epochs=null"]
    # The cache first, in one process (ranks would otherwise both write it).
    main(["prepare", *common, f"run_dir={tmp_path / 'prepare'}"])
    run_dir = tmp_path / "run"
    torchrun_pretrain("rq_mid_net.cli", [*common, "trainer.max_steps=2"], run_dir)
    before = assert_ranks_identical(run_dir, steps=2)
    assert (run_dir / "checkpoints/last.ckpt").is_file()
    output = torchrun_pretrain("rq_mid_net.cli", [*common, "trainer.max_steps=4"], run_dir)
    after = assert_ranks_identical(run_dir, steps=4)
    assert_resumed(output, run_dir, before, after, steps=4)
