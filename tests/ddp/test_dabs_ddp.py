"""rq-dabs pretrain (RQ on token embeddings, SimCLR) on 2 CPU processes (torchrun, gloo): same
weights on both ranks, and a second launch resumes from the run's checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_app import ROOT, assert_ranks_identical, assert_resumed, torchrun_pretrain  # noqa: E402

CONFIG = ROOT / "apps/dabs/configs/demo_quick.yaml"


@pytest.mark.ddp
def test_dabs_pretrain_under_torchrun_matches_ranks_and_resumes(tmp_path):
    from rq_dabs.data.embedded import build_embedded_domain
    from rq_dabs.pretrain import encoder_path

    data_root = tmp_path / "dabs"
    assert build_embedded_domain("digits_images", data_root) is not None  # in one process
    common = [
        "--config", str(CONFIG), f"data_root={data_root}", "domain=digits_images",
        "algorithm=rq", "batch_size=16", "threads=1",
    ]  # fmt: skip
    run_dir = tmp_path / "run"
    torchrun_pretrain("rq_dabs_app.cli", [*common, "trainer.max_steps=2"], run_dir)
    before = assert_ranks_identical(run_dir, steps=2)
    encoder_path(run_dir).unlink()  # a finished run is not trained again; a preempted one is
    output = torchrun_pretrain("rq_dabs_app.cli", [*common, "trainer.max_steps=4"], run_dir)
    after = assert_ranks_identical(run_dir, steps=4)
    assert_resumed(output, run_dir, before, after, steps=4)
