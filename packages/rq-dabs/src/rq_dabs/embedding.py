"""Embedding modules: one input of a domain -> a sequence of token embeddings ``(B, L, D)``.

DABS keeps these light (a reshape and one linear layer, or an embedding table) so that the
transformer does the work; RQ is applied to their output. Shapes follow DABS
``src/models/embedding_modules.py``: 2-D patches flattened as (p1, p2, c), 1-D segments as
(step, channel).
"""

from __future__ import annotations

from torch import Tensor, nn

from rq_dabs.specs import Input1dSpec, Input2dSpec, InputSpec, InputTokensSpec

__all__ = [
    "PatchEmbedding2d",
    "SegmentEmbedding1d",
    "TokenEmbedding",
    "build_embedding",
]


class TokenEmbedding(nn.Module):
    """Token ids ``(B, L)`` -> ``(B, L, D)`` through a learned table.

    >>> import torch
    >>> TokenEmbedding(InputTokensSpec(128, 30522), 256)(
    ...     torch.zeros(2, 128, dtype=torch.long)
    ... ).shape
    torch.Size([2, 128, 256])
    """

    def __init__(self, spec: InputTokensSpec, embed_dim: int) -> None:
        super().__init__()
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab_size, embed_dim)

    @property
    def num_tokens(self) -> int:
        return self.spec.num_tokens

    def forward(self, ids: Tensor) -> Tensor:
        if ids.ndim != 2 or ids.shape[1] != self.spec.seq_len:
            raise ValueError(f"expected token ids (B, {self.spec.seq_len}), got {tuple(ids.shape)}")
        if ids.is_floating_point():
            raise TypeError(f"token ids must be integers, got {ids.dtype}")
        return self.embed(ids.long())


class SegmentEmbedding1d(nn.Module):
    """Time-major series ``(B, T, C)`` -> ``(B, T / s, D)``: each run of ``s`` steps (all
    channels) is flattened and projected.

    >>> import torch
    >>> SegmentEmbedding1d(Input1dSpec(320, 5, 52), 256)(torch.zeros(2, 320, 52)).shape
    torch.Size([2, 64, 256])
    """

    def __init__(self, spec: Input1dSpec, embed_dim: int) -> None:
        super().__init__()
        self.spec = spec
        self.project = nn.Linear(spec.segment_size * spec.in_channels, embed_dim)

    @property
    def num_tokens(self) -> int:
        return self.spec.num_tokens

    def forward(self, series: Tensor) -> Tensor:
        s = self.spec
        if series.ndim != 3 or series.shape[1:] != (s.seq_len, s.in_channels):
            raise ValueError(
                f"expected a time-major series (B, {s.seq_len}, {s.in_channels}), "
                f"got {tuple(series.shape)}"
            )
        b = series.shape[0]
        segments = series.reshape(b, s.num_tokens, s.segment_size * s.in_channels)
        return self.project(segments)


class PatchEmbedding2d(nn.Module):
    """Channel-first ``(B, C, H, W)`` -> ``(B, (H/p1)(W/p2), D)``: non-overlapping patches,
    flattened as (p1, p2, c), projected.

    >>> import torch
    >>> PatchEmbedding2d(Input2dSpec(224, 16, 3), 256)(torch.zeros(2, 3, 224, 224)).shape
    torch.Size([2, 196, 256])
    """

    def __init__(self, spec: Input2dSpec, embed_dim: int) -> None:
        super().__init__()
        self.spec = spec
        p1, p2 = spec.patch_size
        self.project = nn.Linear(p1 * p2 * spec.in_channels, embed_dim)

    @property
    def num_tokens(self) -> int:
        return self.spec.num_tokens

    def forward(self, image: Tensor) -> Tensor:
        s = self.spec
        if (
            image.ndim != 4
            or image.shape[1] != s.in_channels
            or tuple(image.shape[2:]) != s.input_size
        ):
            raise ValueError(
                f"expected (B, {s.in_channels}, {s.input_size[0]}, {s.input_size[1]}), "
                f"got {tuple(image.shape)}"
            )
        b, c, h, w = image.shape
        p1, p2 = s.patch_size
        patches = image.reshape(b, c, h // p1, p1, w // p2, p2).permute(0, 2, 4, 3, 5, 1)
        return self.project(patches.reshape(b, (h // p1) * (w // p2), p1 * p2 * c))


_EMBEDDINGS = {"tokens": TokenEmbedding, "1d": SegmentEmbedding1d, "2d": PatchEmbedding2d}


def build_embedding(spec: InputSpec, embed_dim: int) -> nn.Module:
    """The embedding module for one input spec."""
    try:
        cls = _EMBEDDINGS[spec.input_type]
    except (KeyError, AttributeError):
        raise ValueError(f"no embedding module for spec {spec!r}") from None
    return cls(spec, embed_dim)
