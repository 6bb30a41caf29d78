"""The wheels a GPU acceptance run carries: what the workspace needs and the GPU machine lacks.

The GPU machine (the device tool's ``nvidia-h200``, /work/.library/device/KINDS.md) has Python
3.12 with torch, Triton, Lightning, h5py, scikit-learn, ... and no network. Everything else the
workspace packages need is downloaded here as cp312 manylinux x86-64 wheels
(``scripts/gpu_wheels.sh``), pinned to the versions this project's venv runs, and installed
there without an index (``scripts/gpu_acceptance.sh``).

The list is derived, not written down: the requirements the workspace's pyproject.toml files
declare (with the extras the run uses), followed through the installed packages' metadata in
this venv, minus what the machine already has. A dependency added to a pyproject therefore
reaches the GPU run without editing this file.

    python scripts/gpu/wheels.py pins                  # name==version, one a line
    python scripts/gpu/wheels.py explain               # ... and who needs each
    python scripts/gpu/wheels.py check .gpu/wheels --pins .gpu/pins.txt
                                  # one compatible wheel per pin, nothing else (no venv needed)
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]

# The workspace members and the extras the GPU run exercises (every app's demo and the tests).
WORKSPACE: dict[str, tuple[str, tuple[str, ...]]] = {
    "rq-core": ("packages/rq-core", ("train",)),
    "rq-audio": ("packages/rq-audio", ("corpus",)),
    "rq-points": ("packages/rq-points", ()),
    "rq-dabs": ("packages/rq-dabs", ("images", "text", "speech")),
    "rq-byol-a": ("apps/byol-a", ("demo",)),
    "rq-mid-net": ("apps/mid-net", ("demo",)),
    "rq-dabs-app": ("apps/dabs", ("demo",)),
}

# Needed by the run but declared in no pyproject, with the reason.
ALSO_NEEDED: dict[str, str] = {
    # ./dev setup installs it with --no-deps (its pyaudio requirement does not build).
    "tinysoundfont": "renders the byol-a demo corpus's instrument notes",
}

# Declared by a dependency but never loaded on the paths the run takes.
NOT_INSTALLED: dict[str, str] = {
    "pyaudio": "tinysoundfont declares it for live playback; rendering notes to arrays never "
    "imports it, and it does not build without the PortAudio headers",
}

# Build tools for `pip install --no-build-isolation` of the workspace. rq-core's pyproject needs
# setuptools >= 77 (its SPDX `license` string); the machine's version is unknown, so a pinned one
# is carried and put on PYTHONPATH for the build only.
BUILD_TOOLS: dict[str, str] = {"setuptools": "80.9.0"}

# What the GPU machine's Python (/opt/torch/.venv) already holds: KINDS.md, "Python packages
# already there" (read 2026-11-17). Never carried, never followed further.
MACHINE_PACKAGES = frozenset(
    canonicalize_name(name)
    for name in """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
    hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib
    jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator
    lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
    mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx
    ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
    nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand
    nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
    nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
    opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
    pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
    psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
    pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
    pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
    scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
    shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
    tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz
    torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
    treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
    werkzeug wheel wrapt xarray xxhash yarl zipp
    """.split()
)

# The GPU machine's interpreter, for environment markers and wheel tags.
PYTHON = (3, 12)
MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
# manylinux levels `pip download` may take (the machine runs glibc 2.39: Ubuntu 24.04's
# Python 3.12.3); pip matches each level exactly, so all are listed.
PLATFORMS = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"] + [
    f"manylinux_2_{n}_x86_64" for n in range(5, 40)
]


class WheelListError(RuntimeError):
    """The wheel list cannot be made or a wheel folder does not match it (says which)."""


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    needed_by: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def _workspace_requirements(root: Path) -> list[tuple[Requirement, str]]:
    out = []
    for member, (folder, extras) in WORKSPACE.items():
        project = tomllib.loads((root / folder / "pyproject.toml").read_text())["project"]
        declared = list(project.get("dependencies", []))
        optional = project.get("optional-dependencies", {})
        for extra in extras:
            if extra not in optional:
                raise WheelListError(f"{folder}/pyproject.toml has no extra {extra!r}")
            declared += optional[extra]
        out += [(Requirement(text), member) for text in declared]
    return out


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**MARKER_ENVIRONMENT, "extra": extra})
        for extra in (extras or {""})
    )


def pins(root: Path = ROOT) -> list[Pin]:
    """The wheels to carry, pinned to this environment's installed versions, sorted by name.

    Raises WheelListError naming a requirement that is neither on the machine nor installed
    here (install it in the project venv first, or list it in NOT_INSTALLED)."""
    workspace = {canonicalize_name(m) for m in WORKSPACE}
    machine = MACHINE_PACKAGES
    skip = {canonicalize_name(n) for n in NOT_INSTALLED}
    queue: list[tuple[str, frozenset[str], str]] = []
    for requirement, member in _workspace_requirements(root):
        queue.append((requirement.name, frozenset(requirement.extras), member))
    queue += [(name, frozenset(), f"the run ({why})") for name, why in ALSO_NEEDED.items()]
    found: dict[str, Pin] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, extras, needed_by = queue.pop(0)
        key = canonicalize_name(name)
        if key in workspace or key in machine or key in skip or (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise WheelListError(
                f"{name} (needed by {needed_by}) is not installed in {sys.prefix}: install it "
                "there first, so its version and dependencies are known"
            ) from None
        found.setdefault(key, Pin(key, dist.version, needed_by))
        for text in dist.requires or []:
            requirement = Requirement(text)
            if _applies(requirement, extras):
                queue.append((requirement.name, frozenset(requirement.extras), key))
    for name, version in BUILD_TOOLS.items():
        found[canonicalize_name(name)] = Pin(
            canonicalize_name(name), version, "the workspace build"
        )
    return sorted(found.values(), key=lambda p: p.name)


def target_tags() -> set[Tag]:
    """Every wheel tag the GPU machine's CPython 3.12 on manylinux x86-64 accepts."""
    tags = set(cpython_tags(PYTHON, platforms=PLATFORMS))
    tags |= set(compatible_tags(PYTHON, "cp312", platforms=PLATFORMS + ["any"]))
    return tags


def read_pins(path: Path) -> list[Pin]:
    """Pins from a file of ``name==version`` lines (what ``pins`` printed)."""
    if not path.is_file():
        raise WheelListError(f"no pin file {path}: run scripts/gpu_wheels.sh first")
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, sep, version = line.strip().partition("==")
        if not sep or not name or not version:
            raise WheelListError(f"{path} line {number}: expected name==version, got {line!r}")
        out.append(Pin(canonicalize_name(name), version, str(path)))
    return out


def check_folder(folder: Path, wanted: list[Pin], *, prune: bool = False) -> list[Path]:
    """The wheel file of every pin in ``folder``; raises WheelListError listing each pin with
    no compatible wheel, each package with more than one wheel (two versions stop an install),
    and each wheel no pin asked for. ``prune`` first deletes wheels of other versions or of
    packages no pin names (what an earlier list downloaded)."""
    if not folder.is_dir():
        raise WheelListError(f"no wheel folder {folder}: run scripts/gpu_wheels.sh first")
    if prune:
        keep = {(p.name, p.version) for p in wanted}
        for path in folder.glob("*.whl"):
            try:
                name, version, _, _ = parse_wheel_filename(path.name)
            except ValueError:
                continue
            if (name, str(version)) not in keep:
                path.unlink()
    accepted = target_tags()
    by_name: dict[str, list[tuple[Path, str, bool]]] = {}
    for path in sorted(folder.glob("*.whl")):
        try:
            name, version, _, tags = parse_wheel_filename(path.name)
        except ValueError as error:
            raise WheelListError(f"{path}: not a wheel file name ({error})") from None
        by_name.setdefault(name, []).append((path, str(version), bool(tags & accepted)))
    problems, files = [], []
    for pin in wanted:
        candidates = by_name.pop(pin.name, [])
        if len(candidates) > 1:
            problems.append(
                f"{pin.name}: {len(candidates)} wheels "
                + ", ".join(p.name for p, _, _ in candidates)
            )
        elif not candidates:
            problems.append(f"{pin}: no wheel")
        elif candidates[0][1] != pin.version:
            problems.append(
                f"{pin}: the wheel is version {candidates[0][1]} ({candidates[0][0].name})"
            )
        elif not candidates[0][2]:
            problems.append(
                f"{pin}: {candidates[0][0].name} does not run on CPython 3.12 manylinux x86-64"
            )
        else:
            files.append(candidates[0][0])
    problems += [
        f"{name}: {entries[0][0].name} is not on the list" for name, entries in by_name.items()
    ]
    if problems:
        raise WheelListError(f"{folder} does not match the wheel list: " + "; ".join(problems))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pins", help="name==version of every wheel to carry")
    sub.add_parser("explain", help="the pins and who needs each")
    sub.add_parser("platforms", help="the --platform values for pip download")
    check = sub.add_parser("check", help="check a wheel folder against the pins")
    check.add_argument("folder", type=Path)
    check.add_argument("--pins", type=Path, help="a pin file (default: derive the pins here)")
    check.add_argument("--prune", action="store_true", help="delete wheels no pin asks for first")
    args = parser.parse_args(argv)
    try:
        if args.command == "check" and args.pins is not None:
            wanted = read_pins(args.pins)
        elif args.command != "platforms":
            wanted = pins()
        if args.command == "pins":
            print("\n".join(str(p) for p in wanted))
        elif args.command == "explain":
            print("\n".join(f"{p!s:40s} needed by {p.needed_by}" for p in wanted))
        elif args.command == "platforms":
            print("\n".join(PLATFORMS))
        else:
            files = check_folder(args.folder, wanted, prune=args.prune)
            print(
                f"{args.folder}: {len(files)} wheels, one per pin, "
                "all for CPython 3.12 manylinux x86-64"
            )
    except WheelListError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
