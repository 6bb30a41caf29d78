"""Shared helpers of the rq-dabs tests: tiny models and specs that run in milliseconds."""

from __future__ import annotations

import pytest
import torch
from rq_dabs.specs import Input1dSpec, Input2dSpec, InputTokensSpec
from rq_dabs.transformer import DomainAgnosticTransformer, TransformerConfig

TINY = TransformerConfig(dim=32, depth=1, heads=2, dim_head=16, mlp_dim=64, out_dim=16)


@pytest.fixture
def tiny_config() -> TransformerConfig:
    return TransformerConfig(**vars(TINY))


@pytest.fixture
def sensor_model() -> DomainAgnosticTransformer:
    torch.manual_seed(0)
    return DomainAgnosticTransformer([Input1dSpec(20, 5, 3)], TransformerConfig(**vars(TINY)))


def make_inputs(specs, batch: int, generator: torch.Generator | None = None):
    """Random inputs matching ``specs``."""
    out = []
    for s in specs:
        if isinstance(s, InputTokensSpec):
            out.append(torch.randint(0, s.vocab_size, (batch, s.seq_len), generator=generator))
        elif isinstance(s, Input1dSpec):
            out.append(torch.randn(batch, s.seq_len, s.in_channels, generator=generator))
        elif isinstance(s, Input2dSpec):
            out.append(torch.randn(batch, s.in_channels, *s.input_size, generator=generator))
    return out
