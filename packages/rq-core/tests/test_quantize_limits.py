"""The quantizer at its limits (issue 13, section 3): it cannot be driven into garbage or out
of memory.

- ``num_bins`` and the size of one call's bin tables are bounded; the error comes before any
  allocation (the tests make an allocation of the draws fail loudly instead of running it).
The Triton kernel's share of these runs in test_triton_quantize.py (interpreter fixture).
"""

from __future__ import annotations

import pytest
import torch
from rq_core import RandomizedQuantization, quantize
from rq_core.quantize import (
    MAX_NUM_BINS,
    MAX_TABLE_ENTRIES,
    randomized_quantize,
    sample_quantization_params,
)

# backend x dtype pairs the CPU runs: the compiled kernel takes float32/float64 only.
CPU_PATHS = [
    ("torch", torch.float32),
    ("torch", torch.float64),
    ("torch", torch.float16),
    ("torch", torch.bfloat16),
    ("native", torch.float32),
    ("native", torch.float64),
]


def _needs_native(backend: str) -> None:
    if backend == "native" and quantize._native_kernel() is None:
        pytest.skip("rq_core._native is not built (covered by test_kernel_is_built)")


@pytest.fixture
def no_draws(monkeypatch):
    """Make every draw of the params fail, so a test proves a check comes before allocating."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the quantizer allocated its draws: torch.rand{args}")

    monkeypatch.setattr(torch, "rand", refuse)


# ------------------------------------------------------------------------------ num_bins


@pytest.mark.parametrize("num_bins", [MAX_NUM_BINS + 1, 2**31])
def test_num_bins_above_the_limit_raises_before_drawing(no_draws, num_bins):
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=rf"num_bins must be in \[1, 65536\].*got {num_bins}"):
        randomized_quantize(x, num_bins)
    with pytest.raises(ValueError, match="MAX_NUM_BINS"):
        sample_quantization_params(2, 3, num_bins)
    with pytest.raises(ValueError, match="MAX_NUM_BINS"):
        RandomizedQuantization(num_bins=num_bins)  # at construction, before any input


@pytest.mark.parametrize("backend,dtype", CPU_PATHS)
def test_the_largest_num_bins_works(backend, dtype):
    _needs_native(backend)
    assert MAX_NUM_BINS == 2**16
    x = torch.linspace(-1, 1, 200, dtype=dtype).view(1, 2, 100)
    y = randomized_quantize(
        x, MAX_NUM_BINS, backend=backend, generator=torch.Generator().manual_seed(0)
    )
    assert y.dtype == dtype and bool(((y >= -1) & (y <= 1)).all())


def test_bin_tables_above_the_limit_raise_before_drawing(no_draws):
    # 2**10 samples x 2**10 channels x 2**7 bins = 2**27 entries: ~4 GiB at its peak.
    with pytest.raises(ValueError, match=r"1024 samples x 1024 channels x 128 bins .*MAX_TABLE"):
        sample_quantization_params(2**10, 2**10, 2**7)
    x = torch.zeros(2**10, 2**10, 1)  # 4 MiB input, the tables would be 128x that
    with pytest.raises(ValueError, match="quantize the batch in parts"):
        randomized_quantize(x, 2**7)
    with pytest.raises(ValueError, match="quantize the batch in parts"):
        RandomizedQuantization(num_bins=2**7)(x)


def test_bin_tables_at_the_limit_are_allowed(no_draws, monkeypatch):
    monkeypatch.setattr(quantize, "MAX_TABLE_ENTRIES", 2 * 3 * 8)  # no real allocation
    quantize._check_table_size(2, 3, 8)  # exactly at the limit: no error
    with pytest.raises(ValueError, match="2 samples x 3 channels x 9 bins"):
        quantize._check_table_size(2, 3, 9)
    assert MAX_TABLE_ENTRIES == 2**26
