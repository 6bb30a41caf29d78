"""apps/*/scripts: one launcher per way of starting many processes, each consistent with
what Lightning requires (devices = processes per node, num_nodes = nodes)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = {"byol-a": "rq-byol-a", "mid-net": "rq-mid-net", "dabs": "rq-dabs"}
SCRIPTS = ("torchrun_single_node.sh", "torchrun_multi_node.sh", "slurm_pretrain.sbatch")


@pytest.mark.parametrize("app", sorted(APPS))
@pytest.mark.parametrize("script", SCRIPTS)
def test_launcher_is_valid_bash_and_runs_the_app_distributed(app, script):
    path = ROOT / "apps" / app / "scripts" / script
    assert os.access(path, os.X_OK), f"{path} is not executable"
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    text = path.read_text()
    assert "set -euo pipefail" in text
    assert f"{APPS[app]} pretrain --config" in text and '"$@"' in text
    assert "trainer.accelerator=gpu" in text
    if script.startswith("torchrun"):
        assert "--no-python" in text and "--nproc_per_node" in text
        assert 'trainer.devices="$NPROC"' in text
    if script == "torchrun_multi_node.sh":
        assert "--rdzv_backend c10d" in text and 'trainer.num_nodes="$NNODES"' in text
    if script.endswith(".sbatch"):
        per_node = re.search(r"#SBATCH --ntasks-per-node=(\d+)", text).group(1)
        gpus = re.search(r"#SBATCH --gres=gpu:(\d+)", text).group(1)
        assert per_node == gpus, "one task per GPU"
        assert "--requeue" in text and "\nsrun " in text
        assert 'trainer.num_nodes="$SLURM_JOB_NUM_NODES"' in text
