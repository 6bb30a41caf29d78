"""A run_dir that cannot be written and a malformed override stop every app at once: exit
status 2, one line naming the path or the override, no traceback, and (run_dir) before any
data preparation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_apps import APPS, assert_one_line_error


def _is_a_file(tmp_path: Path) -> tuple[Path, str]:
    target = tmp_path / "taken"
    target.write_text("a file where the run should go\n")
    return target, "is a file, not a directory"


def _under_a_file(tmp_path: Path) -> tuple[Path, str]:
    blocker = tmp_path / "taken"
    blocker.write_text("a file above the run dir\n")
    return blocker / "sub" / "run", f"{blocker} is a file, not a directory"


def _not_writable(tmp_path: Path) -> tuple[Path, str]:
    # sysfs lets nobody, root included, create a folder at its top (EPERM / EACCES): unlike
    # a 0o555 folder, this holds when the tests run as root.
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs Linux sysfs at /sys (a folder that even root cannot write)")
    return Path("/sys/rq-test-run-dir/run"), "cannot be created in /sys"


RUN_DIR_CASES = {
    "is a file": _is_a_file,
    "under a file": _under_a_file,
    "not writable": _not_writable,
}


@pytest.mark.parametrize("case", list(RUN_DIR_CASES))
@pytest.mark.parametrize("app_name", list(APPS))
def test_an_unwritable_run_dir_stops_before_any_data_preparation(app_name, case, tmp_path, run_app):
    app = APPS[app_name]
    run_dir, problem = RUN_DIR_CASES[case](tmp_path)
    # pretrain prepares its data (an HDF5 cache, an embedded domain) under TMP/cache first.
    status, stderr = run_app(app, ["pretrain", *app.tiny_args(tmp_path), f"run_dir={run_dir}"])
    assert_one_line_error(status, stderr, f"{app.script} pretrain", f"run_dir={run_dir}", problem)
    assert not (tmp_path / "cache").exists(), "data preparation ran before the run_dir check"


@pytest.mark.parametrize(
    "override", ["trainer.max_steps=[1", "trainer.seed={x", 'run_dir="unclosed']
)
@pytest.mark.parametrize("app_name", list(APPS))
def test_a_malformed_override_is_named_in_one_line(app_name, override, tmp_path, run_app):
    app = APPS[app_name]
    status, stderr = run_app(app, ["pretrain", *app.tiny_args(tmp_path), override])
    line = assert_one_line_error(status, stderr, f"{app.script} pretrain", f"'{override}'")
    assert "not valid YAML" in line
    assert not (tmp_path / "cache").exists()


def test_a_writable_run_dir_is_left_as_it_was(tmp_path):
    """The check creates nothing that stays: a missing run_dir is still missing after it."""
    from rq_core.config import check_run_dir

    missing = tmp_path / "runs" / "new"
    assert check_run_dir(missing) == missing
    assert os.listdir(tmp_path) == []
    existing = tmp_path / "old"
    existing.mkdir()
    check_run_dir(existing)
    assert os.listdir(existing) == []
