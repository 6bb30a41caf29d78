"""Input specs: what one input of a DABS domain looks like, so a model can embed it.

A DABS dataset returns ``(index, *inputs, label)`` and says, through a static ``spec()``, one
spec per input. The embedding module for each input is chosen from its spec's type (see
:mod:`rq_dabs.embedding`). Field names follow DABS ``src/datasets/specs.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Input1dSpec", "Input2dSpec", "InputSpec", "InputTokensSpec", "spec_from_dict"]


def _pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {value!r}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class InputTokensSpec:
    """Token ids ``(B, seq_len)`` in ``[0, vocab_size)`` (text: BERT ids of length 128)."""

    seq_len: int
    vocab_size: int
    input_type: str = "tokens"

    def __post_init__(self) -> None:
        if self.seq_len < 1 or self.vocab_size < 1:
            raise ValueError(
                f"seq_len and vocab_size must be >= 1, got {self.seq_len}, {self.vocab_size}"
            )

    @property
    def num_tokens(self) -> int:
        return self.seq_len


@dataclass(frozen=True)
class Input1dSpec:
    """Time-major series ``(B, seq_len, in_channels)`` cut into segments of ``segment_size``
    steps, one token per segment (sensors: 320 x 52 in segments of 5)."""

    seq_len: int
    segment_size: int
    in_channels: int
    input_type: str = "1d"

    def __post_init__(self) -> None:
        if min(self.seq_len, self.segment_size, self.in_channels) < 1:
            raise ValueError(f"1d spec sizes must be >= 1, got {self}")
        if self.seq_len % self.segment_size:
            raise ValueError(
                f"seq_len={self.seq_len} is not a multiple of segment_size={self.segment_size}"
            )

    @property
    def num_tokens(self) -> int:
        return self.seq_len // self.segment_size


@dataclass(frozen=True)
class Input2dSpec:
    """Channel-first 2-D input ``(B, in_channels, H, W)`` cut into patches, one token per patch
    (images: patch 16 at 224 px, patch 4 at 32 px; spectrograms: 1 channel)."""

    input_size: tuple[int, int]
    patch_size: tuple[int, int]
    in_channels: int
    input_type: str = "2d"

    def __init__(self, input_size, patch_size, in_channels: int, input_type: str = "2d") -> None:
        object.__setattr__(self, "input_size", _pair(input_size, "input_size"))
        object.__setattr__(self, "patch_size", _pair(patch_size, "patch_size"))
        object.__setattr__(self, "in_channels", int(in_channels))
        object.__setattr__(self, "input_type", input_type)
        for size, patch in zip(self.input_size, self.patch_size):
            if size < 1 or patch < 1 or size % patch:
                raise ValueError(
                    f"input_size={self.input_size} must be a positive multiple "
                    f"of patch_size={self.patch_size}"
                )
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")

    @property
    def num_tokens(self) -> int:
        return (self.input_size[0] // self.patch_size[0]) * (
            self.input_size[1] // self.patch_size[1]
        )


InputSpec = InputTokensSpec | Input1dSpec | Input2dSpec

_SPEC_TYPES = {"tokens": InputTokensSpec, "1d": Input1dSpec, "2d": Input2dSpec}


def spec_from_dict(data: dict) -> InputSpec:
    """Rebuild a spec from its fields (as saved in a checkpoint or a config).

    >>> spec_from_dict(
    ...     {"input_type": "1d", "seq_len": 320, "segment_size": 5, "in_channels": 52}
    ... ).num_tokens
    64
    """
    data = dict(data)
    kind = data.pop("input_type", None)
    if kind not in _SPEC_TYPES:
        raise ValueError(f"unknown input_type {kind!r}; expected one of {sorted(_SPEC_TYPES)}")
    return _SPEC_TYPES[kind](**data)
