"""Checkpoint files that are written atomically and load with ``weights_only=True``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

# The loader and the converter live in a module without Lightning; re-exported here.
from rq_core.checkpoints import load_checkpoint, to_weights_only

__all__ = ["AtomicCheckpointIO", "load_checkpoint", "to_weights_only"]


def _chmod_like_new_file(path: str) -> None:
    """mkstemp creates 0600 files; give the final file the mode open() would (umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class AtomicCheckpointIO(CheckpointIO):
    """Lightning checkpoint IO: write to a temporary file in the same directory, fsync,
    then ``os.replace`` onto the target. A kill at any moment leaves either the previous
    file or the new one, never a truncated one (rename is atomic on POSIX filesystems).
    Loads with ``weights_only=True``.
    """

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike,
        storage_options: Any | None = None,
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        safe = to_weights_only(checkpoint)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(safe, stream)
                stream.flush()
                os.fsync(stream.fileno())
            _chmod_like_new_file(temporary)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        # Make the rename itself durable (a power loss right after could otherwise undo it).
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def load_checkpoint(
        self,
        path: str | os.PathLike,
        map_location: Any | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        return load_checkpoint(path, map_location or "cpu")

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        Path(path).unlink(missing_ok=True)
