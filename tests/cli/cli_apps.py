"""The three apps' CLIs on tiny settings (each app's own test settings, loaded from its
tests/conftest.py), a malicious checkpoint, and the one-line-error check; shared by the
tests in this folder (``sys.path`` holds it, as tests/ddp does)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def _app_test_settings(app: str):
    """``apps/<app>/tests/conftest.py`` as a plain module: its tiny settings, not its fixtures."""
    path = ROOT / "apps" / app / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location(f"tiny_settings_{app.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _byol_a_args(tmp_path: Path) -> list[str]:
    config = _app_test_settings("byol-a").write_tiny_config(tmp_path)
    return ["--config", str(config), f"run_dir={tmp_path / 'run'}"]


def _mid_net_args(tmp_path: Path) -> list[str]:
    demo = ROOT / "apps" / "mid-net" / "configs" / "demo.yaml"
    tiny = _app_test_settings("mid-net").TINY
    # cache_dir: mid-net's shape caches go there (else $RQ_CACHE), inside the test's folder.
    return [
        "--config",
        str(demo),
        *tiny,
        f"cache_dir={tmp_path / 'cache'}",
        f"run_dir={tmp_path / 'run'}",
    ]


def _dabs_args(tmp_path: Path) -> list[str]:
    tiny = _app_test_settings("dabs").TINY
    return [
        *tiny,
        "domain=synthetic_markov_text",
        f"data_root={tmp_path / 'cache'}",
        f"run_dir={tmp_path / 'run'}",
    ]


@dataclass(frozen=True)
class App:
    """One app: its console script, its CLI module, and tiny arguments for a test folder
    (whatever a command prepares goes to ``TMP/cache``; the run to ``TMP/run``)."""

    script: str
    module: str
    tiny_args: Callable[[Path], list[str]]

    def main(self, argv: list[str]):
        return importlib.import_module(self.module).main(argv)

    def command_line(self) -> list[str]:
        """The installed console script, else ``python -m`` of its module."""
        script = Path(sys.executable).with_name(self.script)
        return [str(script)] if script.is_file() else [sys.executable, "-m", self.module]


APPS = {
    "byol-a": App("rq-byol-a", "rq_byol_a.cli", _byol_a_args),
    "mid-net": App("rq-mid-net", "rq_mid_net.cli", _mid_net_args),
    "dabs": App("rq-dabs", "rq_dabs_app.cli", _dabs_args),
}


def assert_one_line_error(status: int, stderr: str, prefix: str, *named: str) -> str:
    """Exit status 2, no traceback, and the last line of stderr is the only error line:
    ``prefix: error: ...`` naming each of ``named``. Returns that line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2, stderr
    assert "Traceback" not in stderr, stderr
    assert lines, "nothing on stderr"
    errors = [line for line in lines if ": error:" in line]
    assert errors == [lines[-1]], stderr
    assert lines[-1].startswith(f"{prefix}: error: "), lines[-1]
    for text in named:
        assert text in lines[-1], lines[-1]
    return lines[-1]


class _TouchMarker:
    """Unpickling this runs ``touch MARKER`` through ``os.system`` (the reported attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint-looking file whose unpickling creates ``marker``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "global_step": 1, "payload": _TouchMarker(marker)}, path)
    return path
