"""rq_core.checkpoints: a weights-only load refuses files that would run code, with one line
that names the file and how to convert a trusted one; the conversion command works."""

from __future__ import annotations

import builtins
import contextlib
import importlib
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rq_core.checkpoints import UnsafeCheckpointError, load_checkpoint


class _TouchWithShell:
    """Unpickling this runs ``touch MARKER`` through ``os.system`` (the reported attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class _CreateWithOpen:
    """Unpickling this creates MARKER through ``builtins.open`` (no shell)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


def _write(kind: str, payload: object, path: Path) -> Path:
    if kind == "zip":  # torch.save's format since torch 1.6
        torch.save({"state_dict": {"w": torch.ones(2)}, "extra": payload}, path)
    elif kind == "legacy":  # torch.save's pre-1.6 format
        torch.save({"extra": payload}, path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle named like a checkpoint
        path.write_bytes(pickle.dumps(payload))
    return path


PAYLOADS = {"os.system": _TouchWithShell, "builtins.open": _CreateWithOpen}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("kind", ["zip", "legacy", "pickle"])
@pytest.mark.parametrize("mmap", [False, True])
def test_a_malicious_file_is_refused_with_one_line_and_its_payload_does_not_run(
    tmp_path, payload, kind, mmap
):
    marker = tmp_path / "MARKER"
    evil = _write(kind, PAYLOADS[payload](marker), tmp_path / "evil.ckpt")
    with pytest.raises(UnsafeCheckpointError) as refused:
        load_checkpoint(evil, mmap=mmap)
    assert not marker.exists()
    message = str(refused.value)
    assert "\n" not in message
    assert str(evil) in message and "is not a plain-weights checkpoint" in message
    assert f"python -m rq_core.checkpoints convert {evil} NEW.ckpt" in message
    assert refused.value.path == evil
    # The payload is live: a full unpickling (what the apps did before) runs it (a bare
    # pickle then fails torch's magic-number check, after the payload ran).
    with contextlib.suppress(RuntimeError):
        torch.load(evil, weights_only=False)
    assert marker.exists()


def test_the_refusal_names_the_global_the_file_needs(tmp_path):
    evil = _write("zip", _TouchWithShell(tmp_path / "m"), tmp_path / "e.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"needs posix\.system"):
        load_checkpoint(evil)


def test_a_refusal_is_still_an_unpickling_error(tmp_path):
    """Code that caught torch's refusal (pickle.UnpicklingError) keeps catching it."""
    evil = _write("zip", _CreateWithOpen(tmp_path / "m"), tmp_path / "e.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(evil)


def test_plain_weights_load_and_missing_files_stay_file_not_found(tmp_path):
    path = tmp_path / "ok.ckpt"
    torch.save(
        {"global_step": 7, "state_dict": {"w": torch.arange(3)}, "shape": torch.Size([3])}, path
    )
    for mmap in (False, True):
        loaded = load_checkpoint(path, mmap=mmap)
        assert loaded["global_step"] == 7 and torch.equal(
            loaded["state_dict"]["w"], torch.arange(3)
        )
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_a_trusted_old_checkpoint_converts_with_the_documented_command(tmp_path, monkeypatch):
    # An older or foreign checkpoint holds objects of its own code: a module of that code.
    (tmp_path / "old_code.py").write_text(
        "import dataclasses\n\n@dataclasses.dataclass\n"
        "class OldHyperparameters:\n    lr: float = 0.1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    old_code = importlib.import_module("old_code")
    old = tmp_path / "old.ckpt"
    torch.save(
        {
            "state_dict": {"w": torch.ones(2)},
            "stats": np.arange(3.0),
            "hparams": old_code.OldHyperparameters(),
        },
        old,
    )
    with pytest.raises(UnsafeCheckpointError, match="not a plain-weights checkpoint"):
        load_checkpoint(old)
    new = tmp_path / "new.ckpt"
    # The command the error message and docs/training.md give; run where the old code imports.
    done = subprocess.run(
        [sys.executable, "-m", "rq_core.checkpoints", "convert", str(old), str(new)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    converted = load_checkpoint(new)
    assert torch.equal(converted["state_dict"]["w"], torch.ones(2))
    assert torch.equal(converted["stats"], torch.arange(3.0, dtype=torch.float64))
    assert converted["hparams"] == repr(old_code.OldHyperparameters())  # objects: their repr
    assert "OldHyperparameters cannot be stored" in done.stderr  # ...with a warning naming it


def test_convert_refuses_to_overwrite_its_source_and_names_a_missing_file(tmp_path):
    from rq_core.checkpoints import main

    source = tmp_path / "a.ckpt"
    torch.save({"w": torch.ones(1)}, source)
    assert main(["convert", str(source), str(source)]) == 2
    assert main(["convert", str(tmp_path / "nope.ckpt"), str(tmp_path / "b.ckpt")]) == 2
    assert load_checkpoint(source)["w"].item() == 1.0


@pytest.mark.parametrize("kind", ["truncated", "empty", "text"])
def test_a_damaged_file_is_named_as_damaged_in_one_line(tmp_path, kind):
    from rq_core.checkpoints import CheckpointError, DamagedCheckpointError

    path = tmp_path / "last.ckpt"
    torch.save({"w": torch.ones(256)}, path)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not a checkpoint\n")
    # Text bytes read as pickle opcodes: some are opcodes the weights-only unpickler refuses
    # (then it is named unsafe, which is as true), others fail as damaged.
    expected = CheckpointError if kind == "text" else DamagedCheckpointError
    with pytest.raises(expected) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message
    assert "does not load as a checkpoint" in message or "not a plain-weights" in message
    assert "\n" not in message
    assert isinstance(caught.value, CheckpointError)
    with pytest.raises(FileNotFoundError):  # a missing file stays what it is
        load_checkpoint(tmp_path / "missing.ckpt")


def test_save_checkpoint_writes_plain_weights_atomically(tmp_path, monkeypatch):
    from rq_core.checkpoints import load_checkpoint, save_checkpoint

    target = tmp_path / "encoder.pt"
    save_checkpoint(target, {"w": torch.ones(2), "where": tmp_path, "n": np.int64(3)})
    loaded = load_checkpoint(target)
    assert loaded["where"] == str(tmp_path) and loaded["n"] == 3
    # A save that fails half-way leaves the old file whole and no temporary behind.
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, {"w": torch.zeros(2)})
    assert load_checkpoint(target)["w"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.pt"]
