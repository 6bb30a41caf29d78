"""Frozen-encoder features for the linear probe: extracted once, cached as ``.npz``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["cached_features", "extract_features"]


def _default_split(batch: Any) -> tuple[Any, Tensor]:
    # (inputs, label) pairs, or DABS's (index, *inputs, label): first input, last label.
    if isinstance(batch, list | tuple) and len(batch) >= 2:
        inputs = batch[1] if len(batch) > 2 else batch[0]
        return inputs, batch[-1]
    raise ValueError(
        "batches must be (inputs, label) or (index, inputs, ..., label); pass split_batch "
        f"for other layouts (got {type(batch).__name__})"
    )


@torch.no_grad()
def extract_features(
    encoder: nn.Module | Callable[[Any], Tensor],
    loader: Iterable[Any],
    *,
    device: str | torch.device = "cpu",
    split_batch: Callable[[Any], tuple[Any, Tensor]] = _default_split,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``encoder`` over ``loader`` in eval mode without gradients.

    Args:
        encoder: maps a batch of inputs to ``(B, D)`` features (a module or a function).
        loader: yields batches; ``split_batch(batch) -> (inputs, labels)`` picks the parts.
        device: where inputs go before the encoder.

    Returns: features ``(N, D)`` float32 and labels ``(N,)`` or ``(N, C)`` as numpy arrays.
    A module's train/eval mode is restored afterwards.

    >>> loader = [(torch.ones(2, 3), torch.tensor([0, 1]))]
    >>> x, y = extract_features(nn.Linear(3, 4), loader)
    >>> x.shape, y.tolist()
    ((2, 4), [0, 1])
    """
    was_training = encoder.training if isinstance(encoder, nn.Module) else None
    if isinstance(encoder, nn.Module):
        encoder.eval()
    features, labels = [], []
    try:
        for batch in loader:
            inputs, batch_labels = split_batch(batch)
            if isinstance(inputs, Tensor):
                inputs = inputs.to(device)
            output = encoder(inputs)
            if output.ndim != 2:
                raise ValueError(
                    f"the encoder must return (batch, dim) features, got {tuple(output.shape)}"
                )
            features.append(output.float().cpu())
            labels.append(torch.as_tensor(batch_labels).cpu())
    finally:
        if was_training:
            encoder.train()
    if not features:
        raise ValueError("the loader yielded no batches")
    return torch.cat(features).numpy(), torch.cat(labels).numpy()


def cached_features(
    cache_path: str | os.PathLike,
    compute: Callable[[], tuple[np.ndarray, np.ndarray]],
    *,
    key: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(features, labels)`` from ``cache_path`` (.npz), or compute and save them.

    ``key`` identifies what the features depend on (e.g. the checkpoint's path and step and
    the split); a cache written under another key is stale and is recomputed. The file is
    written atomically (temporary file + rename), so an interrupted run never leaves a
    truncated cache.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "train.npz"
    >>> calls = []
    >>> def compute():
    ...     calls.append(1)
    ...     return np.zeros((2, 3), np.float32), np.array([0, 1])
    >>> _ = cached_features(path, compute, key="ckpt@100")
    >>> _ = cached_features(path, compute, key="ckpt@100")
    >>> len(calls)
    1
    """
    path = Path(cache_path)
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                return stored["features"], stored["labels"]
    features, labels = compute()
    features, labels = np.asarray(features), np.asarray(labels)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, features=features, labels=labels, key=np.array(key))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return features, labels
