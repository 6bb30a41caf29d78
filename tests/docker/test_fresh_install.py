"""The install-isolation promise of issues 4, 5 and 6, as a user types it: in a fresh virtual
environment, ``pip install -c constraints.txt ./packages/rq-core ./packages/<modality>``
works, the modality imports, and no other modality's distribution is installed (slow: torch
and its CUDA wheels, ~5 GB and a minute or two per modality; the environment is deleted
afterwards). The images' replay (test_docker_replay.py) checks the same with the apps on top.
"""

from __future__ import annotations

import shutil
import sys
import time
import venv
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfiles import MODALITY_MARKERS, ROOT, installed_distributions, run_checked  # noqa: E402

IMPORTS = {"rq-audio": "rq_audio", "rq-points": "rq_points", "rq-dabs": "rq_dabs"}


@pytest.mark.slow
@pytest.mark.parametrize("modality", sorted(MODALITY_MARKERS))
def test_core_and_one_modality_install_alone(modality, scratch):
    # A copy of the two folders and the pins: setuptools builds in the source tree (build/),
    # and stale files there could slip into later wheels of the checkout.
    checkout = scratch / "checkout"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", ".*cache")
    for folder in ("packages/rq-core", f"packages/{modality}"):
        shutil.copytree(ROOT / folder, checkout / folder, ignore=ignore)
    shutil.copy2(ROOT / "constraints.txt", checkout / "constraints.txt")
    env_dir = scratch / "venv"
    started_at = time.monotonic()
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip, python = env_dir / "bin" / "pip", env_dir / "bin" / "python"
    command = f"{pip} install -c constraints.txt ./packages/rq-core ./packages/{modality}"
    run_checked(command.split(), cwd=checkout)
    install_s = time.monotonic() - started_at
    run_checked([str(python), "-c", f"import rq_core, {IMPORTS[modality]}"], cwd=scratch)
    installed = installed_distributions(python)
    assert MODALITY_MARKERS[modality] <= installed
    assert {"torch", "numpy", "rq-core"} <= installed
    absent = sorted(set().union(*(m for o, m in MODALITY_MARKERS.items() if o != modality)))
    assert not (set(absent) & installed), sorted(set(absent) & installed)
    print(
        f"\n[fresh {modality}] {len(installed)} distributions in {install_s:.0f} s; "
        f"absent: {', '.join(absent)}; installed: {' '.join(sorted(installed))}"
    )
