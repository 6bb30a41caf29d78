"""An augmentation chain built from a config list.

Each entry names a block and its arguments::

    augmentations:
      - {name: random_resize_crop, virtual_crop_scale: [1.0, 1.5]}
      - {name: rq, num_bins: 5, channel_mode: sample}

>>> import torch
>>> chain = build_augmentation_chain(
...     [{"name": "random_resize_crop"}, {"name": "rq", "num_bins": 5}]
... )
>>> chain(torch.randn(2, 1, 64, 96)).shape
torch.Size([2, 1, 64, 96])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from rq_audio.augmentations.linear_fader import RandomLinearFader
from rq_audio.augmentations.mixup import MixupBYOLA
from rq_audio.augmentations.quantize import RandomQuantizeAudio
from rq_audio.augmentations.random_resize_crop import RandomResizeCrop

__all__ = ["AUGMENTATIONS", "AugmentationChain", "build_augmentation_chain"]

AUGMENTATIONS: dict[str, type[nn.Module]] = {
    "random_resize_crop": RandomResizeCrop,
    "mixup": MixupBYOLA,
    "linear_fader": RandomLinearFader,
    "rq": RandomQuantizeAudio,
}


class AugmentationChain(nn.Module):
    """Apply blocks in order; every block takes ``(x, generator=...)`` on (B, C, F, T)."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for block in self.blocks:
            x = block(x, generator=generator)
        return x


def build_augmentation_chain(specs: Sequence[Mapping]) -> AugmentationChain:
    """Blocks from ``[{"name": ..., **kwargs}, ...]``; names are the keys of AUGMENTATIONS."""
    blocks = []
    for i, spec in enumerate(specs):
        spec = dict(spec)
        name = spec.pop("name", None)
        if name not in AUGMENTATIONS:
            raise ValueError(
                f"augmentation #{i}: unknown name {name!r}; known: {sorted(AUGMENTATIONS)}"
            )
        for key, value in list(spec.items()):
            if isinstance(value, list):
                spec[key] = tuple(value)
        try:
            blocks.append(AUGMENTATIONS[name](**spec))
        except TypeError as e:
            raise ValueError(f"augmentation #{i} ({name}): {e}") from None
    return AugmentationChain(blocks)
