"""Replay docker/Dockerfile's install steps for each app in fresh virtual environments (slow:
~5 GB of torch/CUDA wheels per image from the package index, about 2 minutes per app).

No engine needed. Every RUN of the builder and runtime stages runs as written under
``sh -c``, with compose's build args in the environment (as Docker passes ARGs to RUN) and the
image's paths mapped: /src -> a copy of what the builder COPYs, /opt/build, /opt/venv, /wheels
and /opt/rq (what the runtime stage COPYs there: the pins, docker/requirements.py, the
pyproject.toml files, the configs) -> tmp, ``python3`` -> the interpreter running the tests;
the shared ``python`` stage (apt, the user) is left out. Then the test proves that
``rq-<app> --help`` and the container entry point start, that the app finds its configs in the
installed wheel (package data, not the checkout), that the demo's imports work, and that the
other modalities' distributions are absent. tests/docker/test_images.py (marker ``docker``)
builds and runs the real images; neither runs on the CUDA base (Ubuntu's Python 3.12), which
no registry here serves. The temporary environments are deleted at the end of each test.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfiles import (  # noqa: E402
    APPS,
    DOCKER,
    DOCKERFILE,
    MODALITY_MARKERS,
    ROOT,
    build_args,
    copy_sources,
    env_value,
    installed_distributions,
    parse,
    run_checked,
    stage_named,
)


def mapped(script: str, mapping: dict[str, str]) -> str:
    """``script`` with every absolute image path of ``mapping`` (a whole path component)
    replaced by its stand-in on this machine."""
    names = "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True))
    return re.sub(rf"(?<![\w./-])({names})(?![\w.-])", lambda m: mapping[m.group(1)], script)


def replay_runs(stage, mapping: dict[str, str], path: list[str], cwd: Path) -> int:
    """Run every RUN of ``stage``, as written, under ``sh -c`` (the shared ``python`` stage's
    apt and user steps are not replayed: the host's Python stands in for them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(stage.args)  # build args are environment variables of RUN
    env["PATH"] = os.pathsep.join([*path, os.environ["PATH"]])
    env["PIP_NO_CACHE_DIR"] = "1"  # the image's pip cache is a build-cache mount
    # The image's files (ASSETS_COMMAND's RQ_ASSETS) go to the mapped folders, never ~/.cache.
    assets = env_value(stage, "RQ_ASSETS")
    if assets:
        env["RQ_ASSETS"] = mapped(assets, mapping)
    replayed = 0
    for run in stage.all("RUN"):
        script = re.sub(r"^(--\S+\s+)+", "", run.raw)  # RUN flags (--mount=...)
        run_checked(["sh", "-c", mapped(script, mapping)], env=env, cwd=cwd)
        replayed += 1
    return replayed


def copy_into_image_paths(stage, mapping: dict[str, str]) -> int:
    """Replay the stage's ``COPY SRC... /opt/...`` from the checkout into the mapped folders
    (a destination ending in / is a folder, as in Docker)."""
    copied = 0
    for copy in stage.all("COPY"):
        *sources, target = copy.args.split()
        if any(s.startswith("--") for s in sources) or not target.startswith("/"):
            continue
        folder = target.endswith("/")
        target = Path(mapped(target.rstrip("/"), mapping))
        assert not target.is_relative_to("/opt"), f"{copy.args}: unmapped {target}"
        for source in sources:
            destination = target / Path(source).name if folder else target
            destination.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, destination)
            else:
                shutil.copy2(ROOT / source, destination)
            copied += 1
    return copied


@pytest.mark.slow
@pytest.mark.parametrize("app", sorted(APPS))
def test_replayed_install_starts_the_app_and_holds_no_other_modality(app, scratch):
    started_at = time.monotonic()
    stages = parse(DOCKERFILE, build_args(app))
    builder, runtime = stage_named(stages, "builder"), stages[-1]
    build_env, runtime_env, wheels = scratch / "build", scratch / "venv", scratch / "wheels"
    shim = scratch / "shim"  # `python3` of the image's RUN lines: this interpreter's base
    shim.mkdir()
    (shim / "python3").symlink_to(os.path.realpath(sys.executable))
    mapping = {
        "/opt/build": str(build_env),
        "/opt/venv": str(runtime_env),
        "/wheels": str(wheels),
        "/opt/rq": str(scratch / "opt-rq"),
    }
    src = copy_sources(builder, scratch / "src")  # COPY ... into WORKDIR /src
    assert replay_runs(builder, mapping, [str(shim)], cwd=src) == 4  # the venv, three wheels
    assert len(list(wheels.glob("*.whl"))) == 3
    assert copy_into_image_paths(runtime, mapping) >= 6  # pins, scripts, pyproject files, configs
    # ENV PATH=/opt/venv/bin:$PATH in the runtime stage
    replay_runs(runtime, mapping, [str(runtime_env / "bin"), str(shim)], scratch)
    assert (runtime_env / "pyvenv.cfg").is_file()
    install_s = time.monotonic() - started_at

    cli, package = APPS[app].script, APPS[app].package
    python = runtime_env / "bin" / "python"
    env = {**os.environ, "PATH": f"{runtime_env / 'bin'}:{os.environ['PATH']}", "RQ_APP": cli}
    env.pop("PYTHONPATH", None)
    env["COLUMNS"] = "1000"  # argparse prints the default config path on one line
    assert "usage" in run_checked([str(runtime_env / "bin" / cli), "--help"], env=env).stdout
    started = run_checked(["sh", str(DOCKER / "entrypoint.sh"), "--help"], env=env, cwd=scratch)
    assert "[devices] torch 2.11.0" in started.stdout

    # The configs come from the wheel (package data), whatever the working directory.
    found = run_checked(
        [str(python), "-c", f"from {package}.cli import CONFIG_DIR; print(CONFIG_DIR)"],
        env=env, cwd=scratch,
    ).stdout.strip()  # fmt: skip
    site_packages = run_checked(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env
    ).stdout.strip()
    assert Path(found) == Path(site_packages) / package / "configs"
    shipped = {p.name for p in Path(found).glob("*.yaml")}
    assert shipped == {p.name for p in (ROOT / "apps" / app / "configs").glob("*.yaml")}
    demo_help = run_checked([cli, "demo", "--help"], env=env, cwd=scratch).stdout
    assert str(Path(found) / "demo.yaml") in " ".join(demo_help.split()), demo_help
    run_checked([cli, "demo", "--print-config"], env=env, cwd=scratch)
    run_checked([str(python), "-c", "import " + ", ".join(APPS[app].demo_imports)], env=env)

    installed = installed_distributions(python)
    own = APPS[app].modality
    assert MODALITY_MARKERS[own] <= installed
    for other, markers in MODALITY_MARKERS.items():
        if other != own:
            assert not (markers & installed), f"{app}: {sorted(markers & installed)} installed"
    others = sorted(set().union(*(m for o, m in MODALITY_MARKERS.items() if o != own)))
    print(
        f"\n[replay {app}] {len(installed)} distributions in {install_s:.0f} s "
        f"(wheels + pip install); absent: {', '.join(others)}; "
        f"installed: {' '.join(sorted(installed))}"
    )
