"""scripts/gpu/wheels.py: the wheel list of the GPU acceptance run is derived from the
workspace's pyproject files and this venv, and a carried folder is checked against it offline."""

from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
import wheels  # noqa: E402

LINUX_312 = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"


def _names(pins) -> set[str]:
    return {p.name for p in pins}


def test_pins_are_what_the_workspace_needs_and_the_gpu_machine_lacks():
    pins = wheels.pins()
    names = _names(pins)
    # Declared by the workspace (rq-core[train], rq-points, rq-audio, rq-audio[corpus]) and
    # absent from the GPU image:
    assert {"omegaconf", "ocnn", "nnaudio", "soundfile", "soxr", "audioread"} <= names
    assert {"espeakng-loader", "pretty-midi"} <= names
    assert {"cffi", "pycparser", "mido"} <= names  # their own, followed through the metadata
    assert {"tinysoundfont", "setuptools"} <= names  # ALSO_NEEDED, BUILD_TOOLS
    # The image has these; they are never carried:
    assert not names & {"torch", "lightning", "numpy", "h5py", "scipy", "triton", "tqdm"}
    # Only needed off the run's paths:
    assert "pyaudio" not in names and "librosa" not in names and "numba" not in names
    for pin in pins:
        if pin.name not in wheels.BUILD_TOOLS:
            assert pin.version == metadata.version(pin.name), pin


def _workspace_copy(tmp_path: Path) -> Path:
    for folder, _ in wheels.WORKSPACE.values():
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(ROOT / folder / "pyproject.toml", tmp_path / folder / "pyproject.toml")
    return tmp_path


def _add_dependency(root: Path, folder: str, requirement: str) -> None:
    path = root / folder / "pyproject.toml"
    text = path.read_text()
    path.write_text(
        text.replace("dependencies = [\n", f'dependencies = [\n    "{requirement}",\n', 1)
    )


def test_a_dependency_added_to_a_pyproject_reaches_the_list(tmp_path):
    root = _workspace_copy(tmp_path)
    assert "ruff" not in _names(wheels.pins(root))
    _add_dependency(root, "packages/rq-dabs", "ruff>=0.5")  # installed here, not on the GPU image
    pin = next(p for p in wheels.pins(root) if p.name == "ruff")
    assert pin.version == metadata.version("ruff") and pin.needed_by == "rq-dabs"


def test_a_requirement_not_installed_here_is_named(tmp_path):
    root = _workspace_copy(tmp_path)
    _add_dependency(root, "apps/mid-net", "no-such-package-rq>=1")
    with pytest.raises(
        wheels.WheelListError, match="no-such-package-rq .needed by rq-mid-net. is not installed"
    ):
        wheels.pins(root)


def _folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


PINS = [
    wheels.Pin("omegaconf", "2.4.0", "t"),
    wheels.Pin("soxr", "1.1.0", "t"),
    wheels.Pin("cffi", "2.1.1", "t"),
]
GOOD = [
    "omegaconf-2.4.0-py3-none-any.whl",
    "soxr-1.1.0-cp312-abi3-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    f"cffi-2.1.1-{LINUX_312}.whl",
]


def test_a_folder_with_one_compatible_wheel_per_pin_passes(tmp_path):
    files = wheels.check_folder(_folder(tmp_path, GOOD), PINS)
    assert sorted(f.name for f in files) == sorted(GOOD)


@pytest.mark.parametrize(
    "names,message",
    [
        (GOOD[:2], r"cffi==2.1.1: no wheel"),
        ([*GOOD, f"cffi-2.0.0-{LINUX_312}.whl"], r"cffi: 2 wheels"),
        (
            [*GOOD[:2], "cffi-2.1.1-cp311-cp311-manylinux2014_x86_64.whl"],
            r"does not run on CPython 3.12",
        ),
        (
            [*GOOD[:2], "cffi-2.1.1-cp312-cp312-macosx_11_0_arm64.whl"],
            r"does not run on CPython 3.12",
        ),
        ([*GOOD[:2], f"cffi-2.0.0-{LINUX_312}.whl"], r"cffi==2.1.1: the wheel is version 2.0.0"),
        (
            [*GOOD, "mido-1.3.3-py3-none-any.whl"],
            r"mido: mido-1.3.3-py3-none-any.whl is not on the list",
        ),
    ],
)
def test_a_folder_that_does_not_match_is_refused_naming_why(tmp_path, names, message):
    with pytest.raises(wheels.WheelListError, match=message):
        wheels.check_folder(_folder(tmp_path, names), PINS)


def test_prune_drops_wheels_an_older_list_downloaded(tmp_path):
    folder = _folder(
        tmp_path, [*GOOD, f"cffi-2.0.0-{LINUX_312}.whl", "mido-1.3.3-py3-none-any.whl"]
    )
    wheels.check_folder(folder, PINS, prune=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted(GOOD)


def test_pin_files_round_trip_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "pins.txt"
    path.write_text("\n".join(str(p) for p in PINS) + "\n")
    assert [(p.name, p.version) for p in wheels.read_pins(path)] == [
        (p.name, p.version) for p in PINS
    ]
    path.write_text("omegaconf==2.4.0\nsoxr\n")
    with pytest.raises(wheels.WheelListError, match=r"pins.txt line 2: expected name==version"):
        wheels.read_pins(path)
    with pytest.raises(wheels.WheelListError, match="run scripts/gpu_wheels.sh first"):
        wheels.read_pins(tmp_path / "missing.txt")
