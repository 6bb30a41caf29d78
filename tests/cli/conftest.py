"""``run_app``: an app's ``main(argv)`` in this process, its exit status and stderr."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def run_app(capfd):
    """``run_app(app, argv)`` -> (exit status, stderr) of ``app.main(argv)`` in this process."""

    def run(app, argv: list[str]) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exited:
            app.main(argv)
        return exited.value.code, capfd.readouterr().err

    return run
