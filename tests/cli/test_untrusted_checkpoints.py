"""Every command that takes a checkpoint or encoder path refuses a malicious pickle: exit
status 2, one line on stderr naming the file and saying it is not a plain-weights
checkpoint, and the payload (``os.system("touch MARKER")``) never runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_apps import APPS, assert_one_line_error, write_malicious_checkpoint

REFUSED = "is not a plain-weights checkpoint"


def _byol_a_settings(run_dir: Path, args: list[str]) -> None:
    """The pretrain_settings.json a finished-or-interrupted run of these args leaves, so the
    rerun resumes from its last.ckpt (rq-byol-a refuses to resume a run it cannot match)."""
    from rq_byol_a.commands import pretrain_stage
    from rq_byol_a.config import ByolAAppConfig
    from rq_core.config import load_config

    config = load_config(ByolAAppConfig, args[1], args[2:])
    pretrain_stage(config, run_dir).prepare(on_change="refuse")


def _dabs_stage(stage_dir: Path, args: list[str]) -> None:
    """The stage.json a finished pretraining of these demo args leaves, so the demo reuses
    the encoder.pt beside it (rq-dabs retrains a stage it has no record of)."""
    from rq_core.config import load_config
    from rq_dabs_app.cli import CONFIG_DIR
    from rq_dabs_app.commands import _pretrain_stage
    from rq_dabs_app.config import DabsAppConfig

    config = load_config(DabsAppConfig, CONFIG_DIR / "demo.yaml", args)
    _pretrain_stage(config, stage_dir.parent.name, stage_dir.name, stage_dir).finish()


# (app, command, extra arguments, where the malicious file is written under TMP). In the
# arguments, {evil} is that file and {tmp} the test's folder; without one, the command finds
# the file where it is written (a run's last.ckpt, a stage's encoder.pt).
CASES = [
    ("byol-a", "pretrain", "trainer.resume={evil}", "evil.ckpt"),
    ("byol-a", "pretrain", "", "run/checkpoints/last.ckpt"),  # auto-resume
    ("byol-a", "evaluate", "evaluate.checkpoint={evil}", "evil.pt"),
    ("byol-a", "embed", "embed.checkpoint={evil}", "evil.pt"),
    ("mid-net", "pretrain", "trainer.resume={evil}", "evil.ckpt"),
    ("mid-net", "pretrain", "", "run/checkpoints/last.ckpt"),  # auto-resume
    ("mid-net", "classify", "pretrained={evil}", "evil.ckpt"),
    ("mid-net", "classify", "", "run/checkpoints/last.ckpt"),  # pretrained="": RUN_DIR's
    ("mid-net", "segment", "pretrained={evil}", "evil.ckpt"),
    ("mid-net", "demo", "demo_variants=[midfc]", "run/pretrain_midfc/checkpoints/last.ckpt"),
    ("dabs", "pretrain", "trainer.resume={evil}", "evil.ckpt"),
    ("dabs", "pretrain", "", "run/checkpoints/last.ckpt"),  # auto-resume
    ("dabs", "transfer", "checkpoint={evil}", "evil.pt"),
    ("dabs", "transfer", "checkpoint={tmp}/pre", "pre/checkpoints/encoder.pt"),  # a run dir
    (
        "dabs",
        "demo",
        "demo.domains=[synthetic_markov_text] demo.algorithms=[rq]",
        "run/synthetic_markov_text/rq/checkpoints/encoder.pt",
    ),  # a finished stage is reused
]


@pytest.mark.parametrize(
    ("app_name", "command", "extra", "plant"),
    CASES,
    ids=[f"{app} {command} {extra or plant}" for app, command, extra, plant in CASES],
)
def test_a_malicious_checkpoint_is_refused_by_every_command(
    app_name, command, extra, plant, tmp_path, run_app
):
    app = APPS[app_name]
    marker = tmp_path / "MARKER"
    evil = write_malicious_checkpoint(tmp_path / plant, marker)
    args = app.tiny_args(tmp_path)
    if app_name == "byol-a" and not extra:
        _byol_a_settings(tmp_path / "run", args)
    if app_name == "dabs" and command == "demo":
        _dabs_stage((tmp_path / plant).parents[1], [*args, *extra.split()])
    status, stderr = run_app(app, [command, *args, *extra.format(evil=evil, tmp=tmp_path).split()])
    assert_one_line_error(status, stderr, f"{app.script} {command}", str(evil), REFUSED)
    assert not marker.exists(), "the pickled payload ran"


@pytest.mark.parametrize(
    ("app_name", "command", "key"),
    [
        ("byol-a", "embed", "embed.checkpoint"),
        ("mid-net", "classify", "pretrained"),
        ("dabs", "transfer", "checkpoint"),
    ],
)
def test_the_console_script_refuses_it_in_one_line(app_name, command, key, tmp_path):
    """The installed entry point, as a user runs it: the same one line, status 2."""
    app = APPS[app_name]
    marker = tmp_path / "MARKER"
    evil = write_malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    done = subprocess.run(
        [*app.command_line(), command, *app.tiny_args(tmp_path), f"{key}={evil}"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert_one_line_error(
        done.returncode, done.stderr, f"{app.script} {command}", str(evil), REFUSED
    )
    assert not marker.exists(), "the pickled payload ran"


DAMAGED = "does not load as a checkpoint"


def _damaged(path: Path, kind: str) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        torch.save({"state_dict": {"w": torch.ones(64, 64)}}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    else:  # a text file passed by mistake
        path.write_text("file_name,label,split\na.wav,dog,train\n")
    return path


@pytest.mark.parametrize("kind", ["truncated", "empty", "text"])
@pytest.mark.parametrize(
    ("app_name", "command", "key"),
    [
        ("byol-a", "evaluate", "evaluate.checkpoint"),
        ("mid-net", "classify", "pretrained"),
        ("dabs", "transfer", "checkpoint"),
    ],
)
def test_a_damaged_checkpoint_is_named_in_one_line(app_name, command, key, kind, tmp_path, run_app):
    """A file that is not a checkpoint at all: one line naming it, status 2, no traceback."""
    app = APPS[app_name]
    bad = _damaged(tmp_path / "model.ckpt", kind)
    status, stderr = run_app(app, [command, *app.tiny_args(tmp_path), f"{key}={bad}"])
    line = assert_one_line_error(status, stderr, f"{app.script} {command}", str(bad))
    assert DAMAGED in line or (kind == "text" and REFUSED in line), line
