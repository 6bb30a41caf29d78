"""The tree's style is enforced by the test command: `ruff format` and `ruff check` (with the
100-column limit, E501) must both be clean, so a pull request cannot bring either back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: it is in the dev group (`./dev setup` installs it)")
    return subprocess.run(
        [ruff, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_tree_is_formatted_with_ruff_format():
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, (
        "files not formatted (run `ruff format .`):\n" + result.stdout[-3000:] + result.stderr
    )


def test_the_tree_passes_ruff_check_with_the_100_column_limit():
    result = _ruff("check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    config = (ROOT / "pyproject.toml").read_text()
    assert "line-length = 100" in config
    ignored = config.split("[tool.ruff.lint]", 1)[1].split("\n[", 1)[0]
    assert "E501" not in ignored, "the line-length rule must not be ignored"
