"""The one feature-extraction loop of every downstream protocol: a frozen encoder over a loader.

Each modality says how one batch becomes features (``encode``: log-mel + encoder for audio,
octree + MID-Net for points, embeddings + transformer for DABS); this loop does the rest the
same way everywhere: eval mode and no gradients, outputs moved to the CPU as numpy, batches
concatenated, a progress bar, the modules' train/eval mode restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["extract_features"]

Output = Tensor | np.ndarray


def _numpy(value: Output) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach()
        if value.is_floating_point():
            value = value.float()  # bf16/fp16 autocast outputs: numpy has no bfloat16
        return value.cpu().numpy()
    return np.asarray(value)


def extract_features(
    encode: Callable[[Any], Output | Mapping[str, Output]],
    batches: Iterable[Any],
    *,
    modules: nn.Module | Sequence[nn.Module] = (),
    progress: bool = True,
    desc: str = "features",
) -> Any:
    """Run ``encode`` on every batch without gradients, with ``modules`` in eval mode.

    Args:
        encode: one batch -> an array ``(B, ...)``, or a mapping of such arrays (e.g.
            ``{"features": ..., "labels": ...}``); torch tensors are moved to the CPU.
        batches: any iterable of batches (a DataLoader).
        modules: the networks ``encode`` uses; each is put in eval mode for the loop and
            given back its train/eval mode afterwards.
        progress: a tqdm bar labelled ``desc``.

    Returns: the outputs concatenated along the first axis, as numpy: one array, or a dict
    of arrays with the keys ``encode`` returned.

    >>> net = nn.Linear(3, 2)
    >>> loader = [(torch.ones(4, 3), torch.arange(4)), (torch.zeros(1, 3), torch.tensor([9]))]
    >>> out = extract_features(lambda b: {"features": net(b[0]), "labels": b[1]}, loader,
    ...                        modules=net, progress=False)
    >>> out["features"].shape, out["labels"].tolist(), net.training
    ((5, 2), [0, 1, 2, 3, 9], True)
    """
    modules = [modules] if isinstance(modules, nn.Module) else list(modules)
    modes = [module.training for module in modules]
    for module in modules:
        module.eval()
    parts: list[Any] = []
    try:
        with torch.no_grad():
            for batch in tqdm(batches, desc=desc, disable=not progress, leave=False):
                output = encode(batch)
                if isinstance(output, Mapping):
                    parts.append({key: _numpy(value) for key, value in output.items()})
                else:
                    parts.append(_numpy(output))
    finally:
        for module, mode in zip(modules, modes, strict=True):
            module.train(mode)
    if not parts:
        raise ValueError("the loader yielded no batches: nothing to extract features from")
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)
