"""Reading checkpoint files without running code: the one loader of every package and app.

A ``torch.save`` file is a pickle, and unpickling can call any function the file names
(``os.system`` included). Every checkpoint or encoder file the suite reads (``trainer.resume``,
``pretrained=``, ``evaluate.checkpoint``, ``embed.checkpoint``, ``checkpoint=``, the encoders
its own runs leave) goes through :func:`load_checkpoint`, which unpickles with
``torch.load(weights_only=True)``: tensors, numbers, strings, ``torch.Size``/dtype/device and
containers, nothing that can run code. The suite's own files need nothing more (they are
written through :func:`to_weights_only`), so :data:`ALLOWED_GLOBALS` is empty. A file that
needs anything else raises :class:`UnsafeCheckpointError`; a file you trust (an older or
foreign checkpoint holding pickled objects) is converted once with::

    python -m rq_core.checkpoints convert OLD.ckpt NEW.ckpt

Needs torch and numpy only (no Lightning, no OmegaConf).
"""

from __future__ import annotations

import argparse
import enum
import os
import pickle
import re
import sys
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from rq_core.runs import atomic_output

__all__ = [
    "ALLOWED_GLOBALS",
    "CheckpointError",
    "DamagedCheckpointError",
    "UnsafeCheckpointError",
    "convert",
    "load_checkpoint",
    "save_checkpoint",
    "to_weights_only",
]

# Globals a weights-only load may build beyond torch's own defaults. Empty: every file the suite
# writes (Lightning checkpoints through AtomicCheckpointIO, the apps' encoder files) holds only
# what torch allows by default (packages/rq-core/tests/test_checkpoints.py loads each app's
# real files to check it).
ALLOWED_GLOBALS: tuple[Any, ...] = ()

CONVERT_COMMAND = "python -m rq_core.checkpoints convert"

_PRIMITIVES = (
    str,
    int,
    float,
    bool,
    type(None),
    torch.Tensor,
    torch.Size,
    torch.dtype,
    torch.device,
)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; ``str(error)`` is one line naming the file."""


class DamagedCheckpointError(CheckpointError):
    """A file that does not load as a ``torch.save`` file at all: empty, cut short, or not a
    checkpoint (garbage bytes, a text file). ``path`` is the file."""

    def __init__(self, path: str | os.PathLike, error: BaseException) -> None:
        self.path = Path(path)
        detail = " ".join(str(error).split())[:160] or "no detail"
        super().__init__(
            f"{self.path} does not load as a checkpoint ({type(error).__name__}: {detail}); it "
            "is empty, cut short, or not a file written by torch.save"
        )


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A file that a weights-only load refuses: reading it would unpickle arbitrary objects.

    ``str(error)`` is one line naming the file, why it was refused and how to convert a file
    that is trusted. ``path`` is the file, ``reason`` what the unpickler refused.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"{self.path} is not a plain-weights checkpoint ({reason}), so it was not loaded: "
            "unpickling it could run code. If you trust this file, convert it once with "
            f"`{CONVERT_COMMAND} {self.path} NEW.ckpt` and use NEW.ckpt"
        )


def _refusal_reason(message: str) -> str:
    """One line saying what torch's weights-only unpickler refused, from its long message."""
    found = re.search(r"GLOBAL (\S+)", message)
    if found:
        return f"it needs {found.group(1)}, which a weights-only load does not build"
    # torch wraps the unpickler's own message in advice and a link; the unpickler's line is
    # the last one before the link paragraph.
    lines = [line.strip() for line in message.split("Check the documentation")[0].splitlines()]
    lines = [line for line in lines if line]
    detail = lines[-1] if lines else "unknown reason"
    return f"the weights-only unpickler refused it: {detail[:200]}"


def _is_zip(path: Path) -> bool:
    """Whether ``path`` is in torch's zip format (the only one ``mmap=True`` can read)."""
    with open(path, "rb") as stream:
        return stream.read(4) == b"PK\x03\x04"


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", *, mmap: bool = False
) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``: no pickled code runs.

    Args:
        path: a file written by ``torch.save`` (a Lightning checkpoint, an encoder file).
        map_location: where tensors go; CPU by default (resume maps to CPU first, then
            Lightning moves states).
        mmap: map the file instead of reading it (cheap when only a few scalars are needed);
            ignored for files in torch's legacy (non-zip) format.

    Raises:
        UnsafeCheckpointError: the file needs globals that a weights-only load does not build
            (a crafted file, or an old or foreign checkpoint holding pickled objects).
        DamagedCheckpointError: the file is empty, cut short or not a ``torch.save`` file.
        FileNotFoundError: no such file.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "w.pt"
    >>> torch.save({"step": 3, "w": torch.ones(2)}, path)
    >>> load_checkpoint(path)["step"]
    3
    """
    path = Path(path)
    mmap = mmap and _is_zip(path)
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            # torch warns about a pickle protocol it did not write before refusing such a
            # file; the refusal below says what matters.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error) or "Weights only load failed" in str(error):
            raise UnsafeCheckpointError(path, _refusal_reason(str(error))) from error
        raise DamagedCheckpointError(path, error) from error
    except (EOFError, KeyError, RuntimeError, ValueError, OSError) as error:
        if isinstance(error, FileNotFoundError | IsADirectoryError | PermissionError):
            raise
        # What torch raises for files that are not what it wrote: a truncated zip
        # (RuntimeError from its zip reader), an empty file (EOFError), stray bytes read as a
        # legacy pickle (KeyError, "invalid load key").
        raise DamagedCheckpointError(path, error) from error


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` where :func:`load_checkpoint` reads it: the one writer of the small
    weights files the apps leave (encoders), plain weights only, atomically.

    ``payload`` goes through :func:`to_weights_only` first; the file appears whole or not
    at all (:func:`rq_core.runs.atomic_output`), so a killed run never leaves half a file
    under the final name.

    >>> import tempfile
    >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "encoder.pt", {"w": torch.ones(2)})
    >>> load_checkpoint(path)["w"].tolist()
    [1.0, 1.0]
    """
    with atomic_output(path) as tmp:
        torch.save(to_weights_only(payload), tmp)
    return Path(path)


def to_weights_only(value: Any, path: str = "checkpoint") -> Any:
    """Turn a checkpoint into containers that ``torch.load(weights_only=True)`` accepts.

    Tensors, numbers, strings and None stay; dicts, lists and tuples are converted
    recursively; OmegaConf configs become plain containers, paths strings, numpy arrays
    tensors and numpy scalars Python numbers. Anything else (e.g. an object passed to
    ``save_hyperparameters``) becomes its ``repr`` with a warning naming where it was.

    >>> to_weights_only({"lr": np.float32(0.5), "dir": Path("/runs/a")})
    {'lr': 0.5, 'dir': '/runs/a'}
    """
    if isinstance(value, np.generic):  # before the primitives: np.float64 is a float
        return value.item()
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, dict):
        converted = {key: to_weights_only(item, f"{path}[{key!r}]") for key, item in value.items()}
        return OrderedDict(converted) if isinstance(value, OrderedDict) else converted
    if isinstance(value, list | tuple):
        items = [to_weights_only(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_weights_only(value.value, path)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            return to_weights_only(OmegaConf.to_container(value, resolve=True), path)
    except ImportError:  # omegaconf ships with the train extra
        pass
    warnings.warn(
        f"{path}: a {type(value).__name__} cannot be stored in a weights-only checkpoint; "
        "saving its repr instead",
        stacklevel=2,
    )
    return repr(value)


def convert(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Re-save a TRUSTED checkpoint as plain weights that :func:`load_checkpoint` reads.

    This fully unpickles ``source`` (``weights_only=False``): any code the file holds runs.
    Use it only on files whose origin you trust (your own older checkpoints, a published
    model from a source you trust). Objects become plain containers or their ``repr``
    (:func:`to_weights_only`, with a warning naming each); the result is checked by loading
    it weights-only.
    """
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise ValueError(f"convert {source}: write the converted file to another path")
    # The one deliberate full unpickling in the suite: run by the user, on a file they trust.
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(to_weights_only(checkpoint), target)
    load_checkpoint(target, mmap=True)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rq_core.checkpoints convert OLD NEW``."""
    parser = argparse.ArgumentParser(
        prog="python -m rq_core.checkpoints",
        description="Convert a trusted checkpoint into one that loads weights-only.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    convert_parser = commands.add_parser(
        "convert",
        help="re-save a TRUSTED checkpoint (it is fully unpickled) as plain weights",
    )
    convert_parser.add_argument("source", type=Path, help="the old checkpoint (trusted)")
    convert_parser.add_argument("target", type=Path, help="where to write the converted one")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"{parser.prog} convert: error: no such file: {args.source}", file=sys.stderr)
        return 2
    try:
        target = convert(args.source, args.target)
    except ValueError as error:
        print(f"{parser.prog} convert: error: {error}", file=sys.stderr)
        return 2
    print(f"{args.source} -> {target} (loads weights-only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
