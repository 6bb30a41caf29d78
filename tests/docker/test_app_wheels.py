"""The apps' wheels (what the images install) carry their configs, and an app installed from
its wheel finds them through importlib.resources, not through the source tree.

Builds the three app wheels (``pip wheel --no-deps``, setuptools fetched into pip's isolated
build environment, ~10 s) from copies of apps/<app> and installs each with ``--target`` into
a temporary folder placed first on PYTHONPATH, so the app is the wheel's copy while its
dependencies come from this environment.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfiles import APPS, ROOT, normalize, run_checked  # noqa: E402


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("app-wheels")
    sources = []
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", "runs")
    for app in APPS:
        shutil.copytree(ROOT / "apps" / app, work / "src" / app, ignore=ignore)
        sources.append(str(work / "src" / app))
    out = work / "wheels"
    run_checked([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), *sources])
    found = {}
    for app, spec in APPS.items():
        # A wheel's file name starts with its distribution name, "-" written "_" (PEP 427).
        (wheel,) = out.glob(f"{normalize(spec.distribution).replace('-', '_')}-*.whl")
        found[app] = wheel
    return found


@pytest.mark.parametrize("app", sorted(APPS))
def test_wheel_holds_every_module_and_every_config(app, wheels):
    package = APPS[app].package
    with zipfile.ZipFile(wheels[app]) as zf:
        names = set(zf.namelist())
        src = ROOT / "apps" / app / "src"
        modules = {p.relative_to(src).as_posix() for p in (src / package).rglob("*.py")}
        assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
        configs = sorted((ROOT / "apps" / app / "configs").glob("*.yaml"))
        assert configs
        for config in configs:
            member = f"{package}/configs/{config.name}"
            assert member in names, member
            assert zf.read(member) == config.read_bytes()
        assert not any(n.startswith(("share/", "configs/")) or ".data/" in n for n in names)


@pytest.mark.parametrize("app", sorted(APPS))
def test_installed_wheel_finds_its_configs_without_the_checkout(app, wheels, tmp_path):
    package = APPS[app].package
    target = tmp_path / "site"
    run_checked([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                 str(target), str(wheels[app])])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        f"import {package}, {package}.cli as cli; print({package}.__file__); print(cli.CONFIG_DIR)"
    )
    module, config_dir = run_checked(
        [sys.executable, "-c", code], env=env, cwd=tmp_path
    ).stdout.split()
    assert Path(module).is_relative_to(target), "the wheel's copy, not the editable checkout"
    assert Path(config_dir) == target / package / "configs"
    assert (Path(config_dir) / "demo.yaml").is_file()
