"""Replay each Dockerfile's install steps in fresh virtual environments (slow: ~5 GB of
torch/CUDA wheels per image from the package index).

The builder's ``pip wheel`` and the runtime's ``pip install`` are taken from the Dockerfile
itself (paths mapped: /src -> the checkout, /wheels and /opt/venv -> tmp, the copied
constraints.txt -> the workspace's), run with this machine's Python, then the test proves that
``rq-<app> --help`` starts, that the container entry point runs, and that the other
modalities' distributions are absent. What it cannot replay without an engine: the CUDA base
image and Ubuntu's Python 3.12 (the venv uses the interpreter running the tests).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfiles import APPS, DOCKER, MODALITY_MARKERS, ROOT, parse, pip_commands  # noqa: E402


def _mapped(argv: list[str], mapping: dict[str, str]) -> list[str]:
    out = []
    for word in argv:
        for src, dst in mapping.items():
            if word == src or word.startswith(src + "/"):
                word = dst + word[len(src) :]
                break
        out.extend(sorted(glob.glob(word)) if "*" in word else [word])
    return out


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=3000, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
@pytest.mark.parametrize("app", sorted(APPS))
def test_replayed_install_starts_the_app_and_holds_no_other_modality(app, tmp_path):
    stages = parse(DOCKER / app / "Dockerfile")
    builder, runtime = stages[0], stages[-1]
    build_env, runtime_env, wheels = tmp_path / "build", tmp_path / "venv", tmp_path / "wheels"
    mapping = {
        "/opt/build": str(build_env),
        "/opt/venv": str(runtime_env),
        "/wheels": str(wheels),
        "/opt/rq/constraints.txt": str(ROOT / "constraints.txt"),
    }
    for env_dir in (build_env, runtime_env):
        venv.EnvBuilder(with_pip=True).create(env_dir)
    (wheel_cmd,) = pip_commands(builder, "wheel")
    wheel_cmd = _mapped(wheel_cmd, mapping)
    _run(wheel_cmd, cwd=ROOT)  # WORKDIR /src holds the same relative paths as the checkout
    assert len(list(wheels.glob("*.whl"))) == 3
    (install_cmd,) = pip_commands(runtime, "install")
    install_cmd = [str(runtime_env / "bin/pip"), *_mapped(install_cmd, mapping)[1:]]
    _run(install_cmd, cwd=tmp_path)

    cli = APPS[app][1]
    env = {**os.environ, "PATH": f"{runtime_env / 'bin'}:{os.environ['PATH']}", "RQ_APP": cli}
    env.pop("PYTHONPATH", None)
    assert "usage" in _run([str(runtime_env / "bin" / cli), "--help"], env=env, cwd=tmp_path).stdout
    started = _run(["sh", str(DOCKER / "entrypoint.sh"), "--help"], env=env, cwd=tmp_path)
    assert "[devices] torch 2.11.0" in started.stdout
    listed = _run(
        [str(runtime_env / "bin/python"), "-c",
         "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"],
        env=env,
    ).stdout  # fmt: skip
    installed = {line.strip().lower().replace("_", "-") for line in listed.splitlines()}
    own = APPS[app][0]
    assert MODALITY_MARKERS[own] <= installed
    for other, markers in MODALITY_MARKERS.items():
        if other != own:
            assert not (markers & installed), f"{app}: {sorted(markers & installed)} installed"
