import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq_mid_net.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[3]


def test_prepare_pretrain_classify_segment(tmp_path, tiny_overrides):
    run = tmp_path / "run"
    main(["prepare", "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides])
    assert len(list((tmp_path / "cache" / "points").glob("procedural-*.h5"))) == 1
    main(["pretrain", "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides, f"run_dir={run}"])
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train/shape_loss" in header and "train/point_loss" in header
    for command in ("classify", "segment"):
        out = tmp_path / command
        main([command, "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides, f"run_dir={out}",
              f"pretrained={run / 'checkpoints' / 'last.ckpt'}"])
        results = json.loads((out / "results.json").read_text())
        assert (out / "results.md").is_file() and (out / "config.yaml").is_file() and (out / "metrics.csv").is_file()
        if command == "classify":
            assert set(results["classify"]["linear"]) == {"0.5", "1.0"}
            assert 0 <= results["classify"]["linear"]["1.0"]["accuracy_mean"] <= 100
        else:
            r = results["segment"]["1.0"]
            assert 0 < r["instance_miou_mean"] <= 100 and 0 < r["class_miou_mean"] <= 100


def test_bad_override_names_the_key(tmp_path, tiny_overrides, capsys):
    with pytest.raises(SystemExit) as err:
        main(["pretrain", "--config", str(CONFIGS / "demo.yaml"), "optim.batch_size=many"])
    assert err.value.code == 2
    assert "optim.batch_size" in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(tmp_path, tiny_overrides, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["classify", "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides, f"run_dir={tmp_path / 'x'}"])
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and "rq-mid-net pretrain" in message[0], message


@pytest.mark.ddp
def test_pretraining_under_two_process_cpu_ddp(tmp_path, tiny_overrides):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           "-m", "rq_mid_net.cli", "pretrain", "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides,
           f"run_dir={run}", "trainer.devices=2", "trainer.strategy=ddp",
           "trainer.sync_batchnorm=false"]  # torch: SyncBatchNorm only works with GPU modules
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    import torch

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # 12 training shapes, batch 4 per process, 2 processes: 1 step per epoch on each rank.
    assert ckpt["global_step"] == 1
    assert ckpt["state_dict"]["loss.shape.bank.bank"].shape == (12, 8)


@pytest.mark.slow
def test_demo_quick_end_to_end_and_reuse(tmp_path, monkeypatch):
    monkeypatch.setenv("RQ_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "demo"
    main(["demo", "--config", str(CONFIGS / "demo_quick.yaml"), f"run_dir={run}"])
    results = json.loads((run / "results.json").read_text())
    assert set(results["results"]) == {"random", "midfc", "rq"}
    assert "| rq |" in (run / "results.md").read_text()
    t0 = time.time()
    main(["demo", "--config", str(CONFIGS / "demo_quick.yaml"), f"run_dir={run}"])  # reuses every stage
    assert time.time() - t0 < 20
