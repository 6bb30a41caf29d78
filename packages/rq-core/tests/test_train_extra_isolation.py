"""The SSL blocks and the linear probe need torch + numpy only, never the train extra."""

import subprocess
import sys

TORCH_ONLY_MODULES = [
    "rq_core",
    "rq_core.heads",
    "rq_core.losses.byol",
    "rq_core.losses.ntxent",
    "rq_core.losses.memory_bank",
    "rq_core.momentum",
    "rq_core.distributed",
    "rq_core.linear_probe",
    "rq_core.probe_metrics",
    "rq_core.features",
    "rq_core.seeding",
]


def test_blocks_import_without_lightning_or_omegaconf():
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_ONLY_MODULES!r}: importlib.import_module(name)\n"
        "loaded = sorted(m for m in ('lightning', 'omegaconf', 'tensorboard', 'sklearn') "
        "if m in sys.modules)\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
