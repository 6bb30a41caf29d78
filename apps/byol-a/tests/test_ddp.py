import os
import socket
import subprocess
import sys

import pytest
import yaml
from rq_byol_a.cli import run


@pytest.mark.ddp
def test_pretraining_under_two_cpu_processes(tiny_config, tmp_path):
    run(["prepare", "--config", str(tiny_config)])  # caches first: ranks then only read them
    run_dir = tmp_path / "ddp"
    with (
        socket.socket() as sock
    ):  # a free port: torchrun's --master_port=0 does not rendezvous here
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        "-m",
        "rq_byol_a.cli",
        "pretrain",
        "--config",
        str(tiny_config),
        f"run_dir={run_dir}",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.accelerator=cpu",
        "data.batch_size=4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "checkpoints" / "encoder.pt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    steps = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert steps and max(int(s) for s in steps if s.isdigit()) <= 3
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["devices"] == "2"
