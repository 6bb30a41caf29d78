"""Every command that takes a checkpoint or encoder path refuses a malicious pickle: exit
status 2, one line on stderr naming the file and saying it is not a plain-weights
checkpoint, and the payload (``os.system("touch MARKER")``) never runs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_apps import APPS, assert_one_line_error, write_malicious_checkpoint

REFUSED = "is not a plain-weights checkpoint"


def _byol_a_settings(run_dir: Path, args: list[str]) -> None:
    """The pretrain_settings.json a finished-or-interrupted run of these args leaves, so the
    rerun resumes from its last.ckpt (rq-byol-a refuses to resume a run it cannot match)."""
    from rq_byol_a.commands import SETTINGS_FILE, _pretrain_settings
    from rq_byol_a.config_schema import ByolAConfig
    from rq_core.config import load_config

    config = load_config(ByolAConfig, args[1], args[2:])
    (run_dir / SETTINGS_FILE).write_text(json.dumps(_pretrain_settings(config, None)))


# id -> (app, command, extra args given TMP and the malicious file, where the file goes).
# `plant` is the path the file is written to (relative to TMP); the command finds it there.
CASES: dict[str, tuple[str, str, Callable[[Path, Path], list[str]], str]] = {
    "byol-a pretrain trainer.resume=FILE": (
        "byol-a", "pretrain", lambda tmp, evil: [f"trainer.resume={evil}"], "evil.ckpt"),
    "byol-a pretrain auto-resume last.ckpt": (
        "byol-a", "pretrain", lambda tmp, evil: [], "run/checkpoints/last.ckpt"),
    "byol-a evaluate evaluate.checkpoint=FILE": (
        "byol-a", "evaluate", lambda tmp, evil: [f"evaluate.checkpoint={evil}"], "evil.pt"),
    "byol-a embed embed.checkpoint=FILE": (
        "byol-a", "embed", lambda tmp, evil: [f"embed.checkpoint={evil}"], "evil.pt"),
    "mid-net pretrain trainer.resume=FILE": (
        "mid-net", "pretrain", lambda tmp, evil: [f"trainer.resume={evil}"], "evil.ckpt"),
    "mid-net pretrain auto-resume last.ckpt": (
        "mid-net", "pretrain", lambda tmp, evil: [], "run/checkpoints/last.ckpt"),
    "mid-net classify pretrained=FILE": (
        "mid-net", "classify", lambda tmp, evil: [f"pretrained={evil}"], "evil.ckpt"),
    "mid-net classify RUN_DIR's last.ckpt": (
        "mid-net", "classify", lambda tmp, evil: [], "run/checkpoints/last.ckpt"),
    "mid-net segment pretrained=FILE": (
        "mid-net", "segment", lambda tmp, evil: [f"pretrained={evil}"], "evil.ckpt"),
    "mid-net demo resuming a stage's last.ckpt": (
        "mid-net", "demo", lambda tmp, evil: ["demo_variants=[midfc]"],
        "run/pretrain_midfc/checkpoints/last.ckpt"),
    "dabs pretrain trainer.resume=FILE": (
        "dabs", "pretrain", lambda tmp, evil: [f"trainer.resume={evil}"], "evil.ckpt"),
    "dabs pretrain auto-resume last.ckpt": (
        "dabs", "pretrain", lambda tmp, evil: [], "run/checkpoints/last.ckpt"),
    "dabs transfer checkpoint=FILE": (
        "dabs", "transfer", lambda tmp, evil: [f"checkpoint={evil}"], "evil.pt"),
    "dabs transfer checkpoint=RUN_DIR": (
        "dabs", "transfer", lambda tmp, evil: [f"checkpoint={tmp / 'pre'}"],
        "pre/checkpoints/encoder.pt"),
    "dabs demo reusing a stage's encoder.pt": (
        "dabs", "demo",
        lambda tmp, evil: ["demo.domains=[synthetic_markov_text]", "demo.algorithms=[rq]"],
        "run/synthetic_markov_text/rq/checkpoints/encoder.pt"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malicious_checkpoint_is_refused_by_every_command(case, tmp_path, run_app):
    app_name, command, extra, plant = CASES[case]
    app = APPS[app_name]
    marker = tmp_path / "MARKER"
    evil = write_malicious_checkpoint(tmp_path / plant, marker)
    args = app.tiny_args(tmp_path)
    if case == "byol-a pretrain auto-resume last.ckpt":
        _byol_a_settings(tmp_path / "run", args)
    status, stderr = run_app(app, [command, *args, *extra(tmp_path, evil)])
    assert_one_line_error(status, stderr, f"{app.script} {command}", str(evil), REFUSED)
    assert not marker.exists(), "the pickled payload ran"


@pytest.mark.parametrize(
    ("app_name", "command", "key"),
    [("byol-a", "embed", "embed.checkpoint"), ("mid-net", "classify", "pretrained"),
     ("dabs", "transfer", "checkpoint")],
)
def test_the_console_script_refuses_it_in_one_line(app_name, command, key, tmp_path):
    """The installed entry point, as a user runs it: the same one line, status 2."""
    app = APPS[app_name]
    marker = tmp_path / "MARKER"
    evil = write_malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    done = subprocess.run(
        [*app.command_line(), command, *app.tiny_args(tmp_path), f"{key}={evil}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert_one_line_error(done.returncode, done.stderr, f"{app.script} {command}", str(evil), REFUSED)
    assert not marker.exists(), "the pickled payload ran"
