"""Shared by tests/ddp/test_*_ddp.py: an app's ``pretrain`` under ``torchrun --nproc_per_node 2``
on CPU (gloo), then checks that both ranks end with the same weights.

The app runs through tests/ddp/app_under_torchrun.py, which only adds a per-rank dump of the
weights after the app's own ``rq_core.training.fit`` call.

``trainer.sync_batchnorm=false``: torch's SyncBatchNorm refuses CPU modules ("SyncBatchNorm
layers only work with GPU modules"), so on CPU each rank keeps its own BatchNorm running
statistics (DDP broadcasts rank 0's buffers at every forward, but the last forward updates
them locally). Parameters and every other buffer must match exactly; running means/variances
are allowed to differ. On GPUs the apps keep the default ``sync_batchnorm=true``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BN_STATS = ("running_mean", "running_var")


def torchrun_pretrain(cli_module: str, args: list[str], run_dir: Path, timeout: float = 240):
    """Run ``cli_module``'s ``pretrain`` on 2 CPU processes; return the combined output."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(HERE / "app_under_torchrun.py"), cli_module, "pretrain", *args,
        f"run_dir={run_dir}", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.strategy=ddp", "trainer.sync_batchnorm=false", "trainer.progress_bar=false",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=run_dir.parent
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def rank_weights(run_dir: Path) -> tuple[dict, dict]:
    return tuple(torch.load(run_dir / f"weights.rank{r}.pt", weights_only=True) for r in (0, 1))


def assert_ranks_identical(run_dir: Path, steps: int) -> dict:
    """Both ranks finished at ``steps`` in a world of 2 with exactly equal weights."""
    for r in (0, 1):
        assert (run_dir / f"steps.rank{r}").read_text().split() == [str(steps), "2"]
    first, second = rank_weights(run_dir)
    assert first.keys() == second.keys()
    compared = [k for k in first if not k.endswith(BN_STATS)]
    assert len(compared) > 0.5 * len(first), "most of the state is compared"
    differ = [k for k in compared if not torch.equal(first[k], second[k])]
    assert not differ, f"ranks differ in {differ[:10]}"
    return first


def assert_resumed(output: str, run_dir: Path, before: dict, after: dict, steps: int) -> None:
    """The second launch continued from last.ckpt and trained on to ``steps``."""
    assert "Restored all states from the checkpoint" in output
    logged = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert sorted({int(s) for s in logged if s}) == list(range(steps)), (
        "one row set per step, no gap"
    )
    changed = [
        k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])
    ]
    assert changed, "the resumed run trained further"
