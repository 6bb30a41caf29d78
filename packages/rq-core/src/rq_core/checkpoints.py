"""Reading checkpoint files: ``load_checkpoint`` and ``to_weights_only``.

Needs torch and numpy only (no Lightning, no OmegaConf).
"""

from __future__ import annotations

import enum
import os
import warnings
from collections import OrderedDict
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

__all__ = ["load_checkpoint", "to_weights_only"]

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
    except ImportError:  # pragma: no cover - omegaconf ships with the train extra
        pass
    warnings.warn(
        f"{path}: a {type(value).__name__} cannot be stored in a weights-only checkpoint; "
        "saving its repr instead",
        stacklevel=2,
    )
    return repr(value)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` (no pickled code runs).

    Maps to CPU by default (resume maps to CPU first, then Lightning moves states).
    """
    return torch.load(Path(path), map_location=map_location, weights_only=True)
