"""Shared by tests/resume/test_*_resume.py: run an app's real ``pretrain`` command, SIGKILL it
right after its N-th checkpoint, run the same command again, and compare the final checkpoint
with the one of an uninterrupted run, tensor by tensor with ``torch.equal``.

The kill comes from the app itself: ``RQ_TEST_SIGKILL_AFTER_CHECKPOINT=N`` makes
``rq_core.training.RunCheckpoint`` SIGKILL its process right after writing its N-th checkpoint
(on every rank under DDP), so the run stops exactly there, not at a time a watcher guessed.
Every run is on CPU with ``trainer.deterministic=true``.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from rq_core.training import load_checkpoint
from rq_core.training.run_checkpoint import KILL_AFTER_CHECKPOINT_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Options every run of these tests shares: bitwise-reproducible CPU training, one row per step.
COMMON = [
    "trainer.accelerator=cpu", "trainer.deterministic=true", "trainer.progress_bar=false",
    "trainer.tensorboard=false", "trainer.log_every_n_steps=1",
]  # fmt: skip


def console_script(name: str) -> str:
    """The app's console script next to this interpreter (``rq-byol-a``, ...)."""
    return str(Path(sys.executable).with_name(name))


def torchrun(module: str, processes: int = 2) -> list[str]:
    """``torchrun --standalone --nproc_per_node N -m MODULE``: the app's CLI on N processes."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(processes), "-m", module,
    ]  # fmt: skip


def run(command: list[str], run_dir: Path, *, kill_after: int | None = None) -> str:
    """Run ``command run_dir=RUN_DIR``; with ``kill_after`` expect it to die by the hook.
    Returns stdout + stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop(KILL_AFTER_CHECKPOINT_ENV, None)
    if kill_after is not None:
        env[KILL_AFTER_CHECKPOINT_ENV] = str(kill_after)
    result = subprocess.run(
        [*command, f"run_dir={run_dir}"],
        capture_output=True, text=True, timeout=900, env=env, cwd=run_dir.parent,
    )  # fmt: skip
    output = result.stdout + result.stderr
    if kill_after is None:
        assert result.returncode == 0, output[-6000:]
    elif command[:3] == [sys.executable, "-m", "torch.distributed.run"]:
        # torchrun reports its workers' deaths as a failure of its own.
        assert result.returncode != 0 and "Signal 9" in output, output[-6000:]
    else:
        assert result.returncode == -signal.SIGKILL, output[-6000:]
    return output


def _tensors(value: Any, prefix: str, into: dict[str, Any]) -> None:
    """Flatten nested dicts/lists into ``{path: leaf}`` (tensors and plain values)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _tensors(item, f"{prefix}.{key}", into)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _tensors(item, f"{prefix}[{index}]", into)
    else:
        into[prefix] = value


def training_state(path: Path) -> dict[str, Any]:
    """Every leaf of what a run carries on: weights and buffers, optimizer and scheduler
    state, per-rank random streams and per-rank module state (e.g. Mixup's memory)."""
    checkpoint = load_checkpoint(path)
    leaves: dict[str, Any] = {}
    for key in ("state_dict", "optimizer_states", "lr_schedulers", "rng_states", "rank_states"):
        _tensors(checkpoint.get(key), key, leaves)
    leaves["global_step"] = checkpoint["global_step"]
    return leaves


def differing(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Names of the leaves that are not bitwise equal (``torch.equal`` for tensors)."""
    names = sorted(set(expected) | set(actual))
    return [
        name for name in names
        if name not in expected or name not in actual
        or not (
            torch.equal(expected[name], actual[name])
            if isinstance(expected[name], torch.Tensor) and isinstance(actual[name], torch.Tensor)
            else expected[name] == actual[name]
        )
    ]  # fmt: skip


def logged_steps(run_dir: Path) -> list[str]:
    """The ``step`` column of ``metrics.csv``, row by row (epoch-mean rows included)."""
    with (run_dir / "metrics.csv").open() as stream:
        return [row["step"] for row in csv.DictReader(stream)]


def assert_resumes_exactly(
    command: list[str], reference: Path, run_dir: Path, kill_after: int, killed_at_step: int
) -> None:
    """Kill ``command`` after its ``kill_after``-th checkpoint (checked to be the one of
    step ``killed_at_step``: the tests choose a mid-epoch and an epoch-end one), rerun it,
    and compare the final checkpoint and the logged steps with the uninterrupted
    ``reference`` run."""
    run(command, run_dir, kill_after=kill_after)
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == killed_at_step
    final = load_checkpoint(reference / "checkpoints" / "last.ckpt")["global_step"]
    assert killed_at_step < final, "the kill came before the end"

    run(command, run_dir)  # the same command: trainer.resume=auto continues

    expected = training_state(reference / "checkpoints" / "last.ckpt")
    actual = training_state(run_dir / "checkpoints" / "last.ckpt")
    weights = [name for name in expected if name.startswith("state_dict.")]
    optimizer = [
        n for n in expected if n.startswith("optimizer_states") and torch.is_tensor(expected[n])
    ]
    assert weights and optimizer, "the comparison covers weights and optimizer tensors"
    differ = differing(expected, actual)
    counts = {}
    for part in ("state_dict", "optimizer_states", "rng_states", "rank_states"):
        total = sum(name.startswith(part) for name in expected)
        counts[part] = f"{sum(name.startswith(part) for name in differ)} of {total}"
    assert not differ, f"entries that differ: {counts}; first: {differ[:8]}"
    assert logged_steps(run_dir) == logged_steps(reference), "no step lost or logged twice"
