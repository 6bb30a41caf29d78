"""Load the points data scripts (plain files, not a package) as modules."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "data_scripts" / "points"


@pytest.fixture
def load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # the scripts import their `_common`

    def load(name: str):
        spec = importlib.util.spec_from_file_location(
            f"points_script_{name}", SCRIPTS / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules.pop("_common", None)
        spec.loader.exec_module(module)
        return module

    return load


def off_text(seed: int) -> str:
    """A random tetrahedron in OFF format, counts glued to the header like ModelNet40's."""
    v = np.random.default_rng(seed).random((4, 3))
    rows = "\n".join(" ".join(f"{x:.4f}" for x in r) for r in v)
    return f"OFF4 4 0\n{rows}\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"


@pytest.fixture
def tetra():
    return off_text
