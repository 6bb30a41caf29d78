"""The three app images built from this checkout and run for real (marker ``docker``: not in
the default run; ``./dev test -m docker``, about 25 minutes with a warm build cache and more
the first time, when torch's CUDA wheels are downloaded).

Needs a Docker engine and a CLI that builds with BuildKit (Debian/Ubuntu's ``docker.io``:
/usr/bin/docker; ``RQ_DOCKER`` names another), and root to make the stand-in base. Run as root
where no engine answers, the module installs ``docker.io`` and ``debootstrap`` with apt-get and
starts ``dockerd`` itself (data in ``RQ_DOCKER_DATA_ROOT``, default /var/lib/docker; stopped at
the end); otherwise it is skipped with the reason. No image registry is used: every stage is
built on ``docker/build_local_base.sh``'s Debian stand-in (``RQ_DOCKER_BASE=IMAGE`` picks
another base, e.g. the CUDA one where a registry is reachable). Builds reach the package index
(``--network=host``); every container runs with ``--network none``.

For each app: the image builds; ``--help`` and the quick demo run offline and every stage of
the demo (every DABS domain) produced its result; the container runs as uid 1000 and changes
nothing outside the mounted /runs and /data (``docker diff``); a GPU config without a GPU stops
with the entry point's message (exit 3); no other modality's distribution is installed and
``pip check`` passes; Triton can build its launcher (C compiler and Python.h present); a rebuild
after editing one app source file takes every dependency layer from the build cache.
Build time, image size, rebuild time and the demo's result line go to
``runs/docker-tests/report.json`` (``RQ_DOCKER_REPORT`` overrides) and are printed at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfiles import (  # noqa: E402
    APPS,
    DOCKER,
    MODALITY_MARKERS,
    ROOT,
    build_args,
    dockerignore_patterns,
    ignored,
    normalize,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

RQ_UID = 1000  # docker/Dockerfile's RQ_UID default
REPORT = Path(os.environ.get("RQ_DOCKER_REPORT", ROOT / "runs" / "docker-tests" / "report.json"))


# ------------------------------------------------------------------ what each demo must show


def _byol_a_stages(cfg: dict, run_dir: Path) -> dict[str, str]:
    """Every method (and the random init) probed on every corpus task."""
    results = json.loads((run_dir / "results.json").read_text())
    wanted = {"random"} | {m["name"] for m in cfg["demo"]["methods"]}
    assert set(results["methods"]) == wanted, results["methods"].keys()
    tasks = set(results["tasks"])
    assert tasks, "no evaluation task"
    stages = {}
    for method, result in results["methods"].items():
        assert set(result["tasks"]) == tasks, (method, result["tasks"].keys())
        for task, r in result["tasks"].items():
            stages[f"{method}/{task}"] = f"{100 * r['accuracy_mean']:.1f}"
    return stages


def _mid_net_stages(cfg: dict, run_dir: Path) -> dict[str, str]:
    """Every variant (random, MID-FC, RQ) classified and segmented."""
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert set(results) == set(cfg["demo_variants"]), results.keys()
    stages = {}
    for variant, r in results.items():
        assert r["classify"] and r["segment"], variant
        if variant != "random":
            assert (run_dir / f"pretrain_{variant}" / "done.json").is_file(), variant
        stages[variant] = json.dumps({"classify": r["classify"], "segment": r["segment"]})[:160]
    return stages


def _dabs_stages(cfg: dict, run_dir: Path) -> dict[str, str]:
    """Every domain pretrained and transferred with every algorithm (none skipped)."""
    stages = {}
    for domain in cfg["demo"]["domains"]:
        for algorithm in cfg["demo"]["algorithms"]:
            done = run_dir / domain / algorithm / "transfer.json"
            assert done.is_file(), f"{domain}/{algorithm} did not run"
            result = json.loads(done.read_text())
            stages[f"{domain}/{algorithm}"] = (
                f"{result['metric']} {result[result['metric'] + '_mean']:.3f}"
            )
    return stages


# What each app's quick demo must have produced, by app (the records of scripts/rq_demo/apps.py,
# through dockerfiles.APPS, say everything else about an app).
DEMO_STAGES: dict[str, Callable[[dict, Path], dict[str, str]]] = {
    "byol-a": _byol_a_stages,
    "mid-net": _mid_net_stages,
    "dabs": _dabs_stages,
}


def test_every_app_has_a_demo_check():
    assert set(DEMO_STAGES) == set(APPS)


def quick_config(app: str) -> str:
    """The app's quick demo config where the image keeps its configs (/opt/rq/configs)."""
    return f"/opt/rq/configs/{APPS[app].quick_config.name}"


def edited_source(app: str) -> Path:
    """The app source file the rebuild test edits: its CLI module."""
    return APPS[app].folder / "src" / APPS[app].package / "cli.py"


# ------------------------------------------------------------------ the engine


@dataclass
class Engine:
    cli: str
    started: subprocess.Popen | None = None

    def run(self, *args: str, timeout: float = 1800, check: bool = True, **kwargs):
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        result = subprocess.run(
            [self.cli, *args], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
        )
        if check:
            assert result.returncode == 0, (
                f"docker {' '.join(args)}: exit {result.returncode}\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result


def _cli() -> str | None:
    if os.environ.get("RQ_DOCKER"):
        return os.environ["RQ_DOCKER"]
    # docker.io's CLI builds with BuildKit; a CLI without the buildx plugin cannot build
    # docker/Dockerfile (RUN --mount).
    if Path("/usr/bin/docker").is_file():
        return "/usr/bin/docker"
    return shutil.which("docker")


def _answers(cli: str | None) -> bool:
    if cli is None:
        return False
    try:
        return subprocess.run([cli, "info"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
        assert result.returncode == 0, (
            f"{' '.join(argv)}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def _start_dockerd(log: Path) -> subprocess.Popen:
    """dockerd without a bridge or iptables rules: builds use the host's network and every
    container here runs with --network none."""
    data_root = os.environ.get("RQ_DOCKER_DATA_ROOT", "/var/lib/docker")
    argv = [
        "dockerd",
        "--storage-driver=overlay2",
        "--iptables=false",
        "--bridge=none",
        f"--data-root={data_root}",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    cli = _cli()
    if _answers(cli):
        yield Engine(cli)
        return
    root = os.geteuid() == 0
    if not root or (shutil.which("dockerd") is None and shutil.which("apt-get") is None):
        pytest.skip(
            "no Docker engine answers `docker info` (as root: apt-get install docker.io, then "
            "dockerd --storage-driver=overlay2 --iptables=false --bridge=none &, or run these "
            "tests as root and they do it)"
        )
    if shutil.which("dockerd") is None or not Path("/usr/bin/docker").is_file():
        _apt_install("docker.io")
    cli = _cli()
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    process = _start_dockerd(log)
    deadline = time.monotonic() + 120
    while not _answers(cli):
        if process.poll() is not None or time.monotonic() > deadline:
            process.terminate()
            pytest.fail(f"dockerd did not start:\n{log.read_text()[-3000:]}")
        time.sleep(2)
    yield Engine(cli, process)
    process.terminate()
    process.wait(timeout=120)


@pytest.fixture(scope="session")
def base_image(engine) -> str:
    """RQ_DOCKER_BASE, else the stand-in from docker/build_local_base.sh, tagged with the
    script's hash (made once; remade when the script changes)."""
    if os.environ.get("RQ_DOCKER_BASE"):
        return os.environ["RQ_DOCKER_BASE"]
    script = DOCKER / "build_local_base.sh"
    tag = f"local/base:{sha256(script.read_bytes()).hexdigest()[:12]}"
    if engine.run("image", "inspect", tag, check=False).returncode == 0:
        return tag
    if os.geteuid() != 0:
        pytest.skip(f"the stand-in base {tag} is missing and debootstrap needs root")
    if shutil.which("debootstrap") is None:
        _apt_install("debootstrap")
    result = subprocess.run(
        ["bash", str(script), tag],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "DOCKER": engine.cli},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tag


# ------------------------------------------------------------------ building


@pytest.fixture(scope="session")
def report(request):
    """Measurements per app, written to REPORT as they come and printed at the end."""
    data: dict[str, dict] = {}
    yield data
    if not data:
        return
    writer = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", "[docker images] app: build, size, rebuild, demo"]
    for app, row in sorted(data.items()):
        lines.append(
            f"  {app}: build {row.get('build_s', '?')} s, {row.get('size_gb', '?')} GB "
            f"(venv {row.get('venv_gb', '?')} GB), rebuild {row.get('rebuild_s', '?')} s, "
            f"demo {row.get('demo_s', '?')} s: {row.get('demo_line', '?')}"
        )
    lines.append(f"  written to {REPORT}")
    for line in lines:
        (writer.write_line if writer else print)(line)


def _record(report: dict, app: str, **values) -> None:
    report.setdefault(app, {}).update(values)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def build(engine: Engine, app: str, base: str, tag: str, context: Path = ROOT) -> tuple[float, str]:
    """``docker build`` of ``app``'s image from ``context`` with compose's build args; returns
    (seconds, BuildKit's plain log)."""
    argv = ["build", "--network=host", "--progress=plain", "-f", "docker/Dockerfile", "-t", tag]
    for key, value in {**build_args(app), "BASE_IMAGE": base}.items():
        argv += ["--build-arg", f"{key}={value}"]
    started = time.monotonic()
    result = engine.run(*argv, ".", cwd=context, timeout=3600, check=False)
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"build of {app} failed:\n{result.stderr[-6000:]}"
    return seconds, result.stderr  # BuildKit writes its progress to stderr


_images: dict[str, str] = {}


@pytest.fixture(params=sorted(APPS))
def app(request):
    return request.param


@pytest.fixture
def image(app, engine, base_image, report) -> str:
    """``app``'s image, built once per session from the checkout."""
    if app not in _images:
        tag = f"rq-test/{app}:checkout"
        seconds, _ = build(engine, app, base_image, tag)
        size = int(engine.run("image", "inspect", "--format", "{{.Size}}", tag).stdout)
        venv = container(engine, tag, "-sb", "/opt/venv", options=["--entrypoint", "du"])
        _record(
            report,
            app,
            build_s=round(seconds),
            size_gb=round(size / 1e9, 2),
            venv_gb=round(int(venv.stdout.split()[0]) / 1e9, 2),
            base=base_image,
        )
        _images[app] = tag
    return _images[app]


def container(
    engine: Engine, image: str, *args: str, name: str | None = None, mounts=(), options=(), **kw
):
    """``docker run --network none [options]`` of ``image`` with ``args``; removed afterwards
    unless named (then the caller inspects and removes it)."""
    argv = ["run", "--network", "none", *(["--name", name] if name else ["--rm"]), *options]
    for host, target in mounts:
        argv += ["-v", f"{host}:{target}"]
    return engine.run(*argv, image, *args, **kw)


PYTHON = ["--entrypoint", "/opt/venv/bin/python"]  # checks of the image, past the entry point


def _owned_by_the_image_user(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, RQ_UID, RQ_UID)
    else:
        path.chmod(0o777)
    return path


# ------------------------------------------------------------------ the tests


def test_help_runs_offline_as_a_non_root_user(app, image, engine):
    started = container(engine, image, "--help")
    assert "[devices] torch" in started.stdout and "usage:" in started.stdout, started.stdout
    assert APPS[app].script in started.stdout
    uid = container(
        engine, image, "-c", "import os; print(os.getuid(), os.getgid())", options=PYTHON
    )
    assert uid.stdout.split() == [str(RQ_UID), str(RQ_UID)], uid.stdout
    user = engine.run("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == str(RQ_UID)


def test_quick_demo_runs_offline_every_stage_and_writes_only_the_volumes(
    app, image, engine, tmp_path, report
):
    runs = _owned_by_the_image_user(tmp_path / "runs")
    data = _owned_by_the_image_user(tmp_path / "data")
    mounts = [(runs, "/runs"), (data, "/data")]
    printed = container(
        engine, image, "demo", "--config", quick_config(app), "--print-config"
    ).stdout
    # The entry point's own lines come first.
    cfg = yaml.safe_load(
        "\n".join(x for x in printed.splitlines() if not x.startswith("[devices]"))
    )
    name = f"rq-test-demo-{app}-{os.getpid()}"
    started = time.monotonic()
    try:
        demo = container(
            engine, image, "demo", "--config", quick_config(app), "run_dir=/runs/demo",
            name=name, mounts=mounts, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
        assert demo.returncode == 0, f"demo failed:\n{demo.stdout[-4000:]}\n{demo.stderr[-4000:]}"
        changed = engine.run("diff", name).stdout.split("\n")
    finally:
        engine.run("rm", "--force", name, check=False)
    skipped = [line for line in demo.stdout.splitlines() if re.match(r"\[demo\].*: skipped", line)]
    assert not skipped, skipped  # e.g. a DABS domain whose files are missing
    stages = DEMO_STAGES[app](cfg, runs / "demo")
    # Nothing outside the volumes: the image stays as built (/tmp is scratch).
    outside = [line for line in changed if line and not re.match(r"^[ACD] /tmp(/|$)", line)]
    assert not outside, f"{app} wrote outside /runs and /data: {outside}"
    owners = {p.stat().st_uid for p in runs.rglob("*")} | {p.stat().st_uid for p in data.rglob("*")}
    assert owners == {RQ_UID}, owners
    demo_lines = [line for line in demo.stdout.splitlines() if line.strip()]
    result_line = next(
        (line for line in reversed(demo_lines) if line.startswith("[demo]")),
        next((line for line in demo_lines if re.match(r"^\|\s*rq\b", line)), demo_lines[-1]),
    )
    _record(report, app, demo_s=round(seconds), demo_line=result_line.strip(), stages=stages)
    print(f"\n[{app} demo] {len(stages)} stages in {seconds:.0f} s: {result_line}")


def test_a_gpu_config_without_a_gpu_stops_with_the_entrypoint_message(app, image, engine):
    refused = container(
        engine, image, "pretrain", "--config", quick_config(app), "trainer.accelerator=gpu",
        "run_dir=/tmp/never", check=False,
    )  # fmt: skip
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "GPU" in refused.stderr and "--gpus all" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_image_holds_no_other_modality_and_its_requirements_hold(app, image, engine):
    listed = container(
        engine, image, "-c",
        "import importlib.metadata as m; "
        "print('\\n'.join(d.metadata['Name'] for d in m.distributions()))",
        options=PYTHON,
    )  # fmt: skip
    installed = {normalize(line) for line in listed.stdout.splitlines() if line.strip()}
    own = APPS[app].modality
    assert MODALITY_MARKERS[own] <= installed, MODALITY_MARKERS[own] - installed
    for other, markers in MODALITY_MARKERS.items():
        if other != own:
            assert not (markers & installed), f"{app}: {sorted(markers & installed)} installed"
    # pip check: every requirement is met, but those of the --no-deps installs (their
    # declared dependencies are left out on purpose, e.g. tinysoundfont's pyaudio).
    checked = container(engine, image, "-m", "pip", "check", options=PYTHON, check=False)
    no_deps = {normalize(n) for n in build_args(app).get("NO_DEPS", "").split()}
    problems = [
        line for line in checked.stdout.splitlines()
        if line.strip() and normalize(line.split()[0]) not in no_deps and "No broken" not in line
    ]  # fmt: skip
    assert not problems, checked.stdout


TRITON_PROBE = """
import triton.runtime.build as build
source = '''
#include <Python.h>
static struct PyModuleDef probe = {PyModuleDef_HEAD_INIT, "rq_probe", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_rq_probe(void) { return PyModule_Create(&probe); }
'''
print("built", build.compile_module_from_src(source, "rq_probe").__name__)
"""


def test_triton_can_build_its_launchers(image, engine):
    """On a GPU, Triton (rq-core's CUDA kernels) compiles small C modules with the system
    compiler and Python.h before the first kernel runs: the image must have both."""
    probe = container(
        engine, image, "-c", TRITON_PROBE,
        options=[*PYTHON, "-e", "TRITON_CACHE_DIR=/tmp/triton"],
    )  # fmt: skip
    assert probe.stdout.strip().endswith("built rq_probe"), probe.stdout + probe.stderr


# Libraries the environment's shared objects may name without shipping them: the driver's
# libcuda (mounted by the NVIDIA Container Toolkit), the cluster transports that NVSHMEM and
# cuFile load only where a cluster provides them (MPI, PMIx, OpenSHMEM, UCX, libfabric, verbs),
# and TBB, which numba's optional TBB threading layer loads only when installed (byol-a).
MAY_BE_ABSENT = ("libcuda.so", "libmpi.so", "libpmix.so", "liboshmem.so", "libucp.so",
                 "libucs.so", "libfabric.so", "libibverbs.so", "librdmacm.so", "libmlx5.so",
                 "libtbb.so")  # fmt: skip

MISSING_LIBRARIES = r"""
cd /opt/venv/lib/python3*/site-packages
find . -name '*.so*' -type f | while read -r f; do
    ldd "$f" 2> /dev/null | awk -v f="$f" '/not found/ {print f, $1}'
done
echo "shipped $(find . -name '*.so*' | sed 's|.*/||' | sort -u | tr '\n' ' ')"
"""


def test_no_shared_library_the_cuda_stack_links_is_missing(image, engine):
    """What docker/prune_venv.sh removes is never linked: every library an ``.so`` of the
    environment needs is shipped in it (torch's own libraries resolve once torch is loaded,
    as for torchvision's extensions) or comes from the host (the driver, cluster
    transports)."""
    listed = container(engine, image, "-c", MISSING_LIBRARIES, options=["--entrypoint", "sh"])
    *missing, shipped = listed.stdout.strip().splitlines()
    assert shipped.startswith("shipped "), listed.stdout[-2000:]
    names = set(shipped.split()[1:])
    lacking = [line for line in missing if not line.split()[1].startswith(MAY_BE_ABSENT)]
    unresolvable = [line for line in lacking if line.split()[1] not in names]
    assert not unresolvable, "\n".join(unresolvable)


def _edited_context(app: str, destination: Path) -> Path:
    """A copy of the build context (what .dockerignore lets in) with one app source file
    edited."""
    patterns = dockerignore_patterns()

    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = Path(folder).relative_to(ROOT)
        return {n for n in names if ignored((relative / n).as_posix(), patterns)}

    for item in ("packages", "apps", "docker"):
        shutil.copytree(ROOT / item, destination / item, ignore=ignore, symlinks=True)
    for item in ("constraints.txt", ".dockerignore"):
        shutil.copy2(ROOT / item, destination / item)
    edited = destination / edited_source(app).relative_to(ROOT)
    # A new edit each time: the build cache also holds the layers of earlier runs' edits.
    stamp = time.time_ns()
    edited.write_text(edited.read_text() + f"\n# edited by tests/docker/test_images.py {stamp}\n")
    return destination


def _steps(log: str) -> dict[str, bool]:
    """BuildKit's plain log -> {step description: taken from the cache}."""
    names, cached = {}, set()
    for line in log.splitlines():
        if m := re.match(r"^#(\d+) (\[.+)$", line):
            names.setdefault(m.group(1), m.group(2))
        elif m := re.match(r"^#(\d+) CACHED$", line):
            cached.add(m.group(1))
    return {name: step in cached for step, name in names.items()}


def dependency_steps(app: str) -> tuple[list[str], str]:
    """How BuildKit's plain log names (build args substituted) the steps that an app edit must
    take from the cache, and the app's wheel step, which it must redo."""
    args = build_args(app)
    cached = [
        "apt-get install",  # python stage
        "useradd",
        "requirements.py",  # the dependency layer
        "pip install --no-deps -c /opt/rq/constraints.txt",  # NO_DEPS
        "--wheel-dir /wheels packages/rq-core",
        f'--wheel-dir /wheels "packages/{args["PACKAGE"]}"',
    ]
    return cached, f'--wheel-dir /wheels "apps/{args["APP"]}"'


def test_a_rebuild_after_editing_app_source_reuses_every_dependency_layer(
    app, image, engine, base_image, tmp_path, report
):
    context = _edited_context(app, tmp_path / "context")
    tag = f"rq-test/{app}:edited"
    try:
        seconds, log = build(engine, app, base_image, tag, context=context)
    finally:
        engine.run("rmi", tag, check=False)
    steps = _steps(log)
    cached, redone = dependency_steps(app)
    for marker in cached:
        found = {name: hit for name, hit in steps.items() if marker in name}
        assert found, f"no build step matches {marker!r}: {list(steps)}"
        assert all(found.values()), f"rebuilt after an app edit: {found}"
    (app_step,) = [hit for name, hit in steps.items() if redone in name]
    assert not app_step, "the edited app was not rebuilt"
    _record(report, app, rebuild_s=round(seconds))
    print(f"\n[{app} rebuild] {seconds:.0f} s after editing {edited_source(app).relative_to(ROOT)}")
