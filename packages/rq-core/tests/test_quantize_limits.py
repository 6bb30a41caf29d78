"""The quantizer at its limits (issue 13, section 3): it cannot be driven into garbage or out
of memory.

- ``num_bins`` and the size of one call's bin tables are bounded; the error comes before any
  allocation (the tests make an allocation of the draws fail loudly instead of running it).
- A channel whose ``max - min`` overflows its dtype is still binned: every output lies in its
  bin and inside [min, max], on every backend, bit-identical across them.
- NaN/Inf inputs raise ValueError naming the sample (or segment) and channel, on every path.
- Sparse segment ids (a huge id on a few rows) cost memory for the present segments only.
The Triton kernel's share of these runs in test_triton_quantize.py (interpreter fixture).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rq_core import RandomizedQuantization, quantize
from rq_core.quantize import (
    MAX_NUM_BINS,
    MAX_TABLE_ENTRIES,
    QuantizationParams,
    apply_randomized_quantization,
    randomized_quantize,
    sample_quantization_params,
    segment_min_max,
)

HALF = [torch.float16, torch.bfloat16]
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


# ------------------------------------------------------------------- ranges that overflow


# Each case: values of one channel whose max - min is beyond the dtype's largest number.
OVERFLOWING = {
    torch.float32: [-2e38, 2e38, 0.0, 1.0],
    torch.float64: [-1e308, 1e308, 0.0, 1.0],
    torch.bfloat16: [-3e38, 3e38, 0.0, 1.0],  # binned in float32, which overflows the same
    torch.float16: [-65504.0, 65504.0, 0.0, 1.0],  # float32 holds this range: the control
}


def _expected(x: torch.Tensor, dim: int, params: QuantizationParams):
    """Bin of every element and its output, from the shared tables (regular layouts)."""
    mn, mx = quantize.channel_min_max(x, dim)
    cuts, values = quantize.bin_tables(mn, mx, params)
    S, A, C, B = quantize._layout(x, dim)
    rows = x.reshape(S, A, C, B).permute(0, 2, 1, 3).reshape(S * C, A * B)
    bins = torch.searchsorted(cuts, rows.to(cuts.dtype).contiguous(), right=True)
    return mn, mx, cuts, values, rows, bins


def _assert_near(got: torch.Tensor, a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> None:
    """``got`` is ``a + f * (b - a)`` up to a few roundings, compared in float64 after dividing
    every row by its largest magnitude (so nothing overflows, not even for float64 data)."""
    m = torch.maximum(a.abs().amax(1, keepdim=True), b.abs().amax(1, keepdim=True))
    m = m.double().clamp_min(torch.finfo(torch.float64).tiny)
    a, b = a.double() / m, b.double() / m
    err = (got.double() / m - (a + f.double() * (b - a))).abs()
    assert bool((err <= 8 * torch.finfo(got.dtype).eps).all()), "a table entry is misplaced"


def assert_inside_bins(x: torch.Tensor, y: torch.Tensor, dim: int, params: QuantizationParams):
    """The tables sit where the fractions put them; every output is its bin's value, that
    value lies in the bin, and in [min, max]."""
    mn, mx, cuts, values, rows, bins = _expected(x, dim, params)
    lo, hi = mn.to(cuts.dtype).reshape(-1, 1), mx.to(cuts.dtype).reshape(-1, 1)
    assert bool(torch.isfinite(cuts).all() and torch.isfinite(values).all())
    rows_, n = lo.shape[0], params.num_bins
    _assert_near(cuts, lo, hi, params.cut_fractions.reshape(rows_, n - 1))
    edges = torch.cat([lo, cuts, hi], 1)
    _assert_near(values, edges[:, :-1], edges[:, 1:], params.value_fractions.reshape(rows_, n))
    assert bool((cuts[:, 1:] >= cuts[:, :-1]).all()), "cuts out of order"
    left = torch.cat([lo, cuts], 1).gather(1, bins)
    right = torch.cat([cuts, hi], 1).gather(1, bins)
    value = values.gather(1, bins)
    assert bool(((left <= value) & (value <= right)).all()), "a bin value outside its bin"
    assert bool(((left <= rows.to(cuts.dtype)) & (rows.to(cuts.dtype) <= right)).all())
    S, A, C, B = quantize._layout(x, dim)
    out = y.reshape(S, A, C, B).permute(0, 2, 1, 3).reshape(S * C, A * B)
    assert torch.equal(out, value.to(x.dtype)), "an output is not its bin's value"
    out = out.to(cuts.dtype)
    assert bool(((lo <= out) & (out <= hi)).all()), "an output outside [min, max]"


@pytest.mark.parametrize("backend,dtype", CPU_PATHS)
@pytest.mark.parametrize("num_bins", [1, 2, 8, 40])
def test_a_range_that_overflows_is_binned_inside(backend, dtype, num_bins):
    _needs_native(backend)
    x = torch.tensor(OVERFLOWING[dtype], dtype=dtype).view(1, 1, 4)
    x = torch.cat([x, x.flip(-1) / 3, x * 0.5], dim=1)  # three channels, two overflowing
    params = sample_quantization_params(
        1,
        3,
        num_bins,
        dtype=quantize._compute_dtype(dtype),
        generator=torch.Generator().manual_seed(1),
    )
    y = apply_randomized_quantization(x, params, backend=backend)
    assert_inside_bins(x, y, 1, params)
    if num_bins > 2:  # some spread, not every value collapsed onto the max
        assert y[0, 0].unique().numel() > 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_overflowing_ranges_are_bit_identical_across_cpu_backends(dtype):
    _needs_native("native")
    big = torch.finfo(dtype).max
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(3, 4, 50, generator=g, dtype=dtype) * 2 - 1) * big  # ranges up to 2 max
    x[0, 0, :2] = torch.tensor([-big, big], dtype=dtype)
    for num_bins in (5, 30, 100):
        params = sample_quantization_params(3, 4, num_bins, dtype=dtype, generator=g)
        native = apply_randomized_quantization(x, params, backend="native")
        reference = apply_randomized_quantization(x, params, backend="torch")
        assert torch.equal(native, reference)
        assert_inside_bins(x, native, 1, params)


def test_ordinary_ranges_keep_their_bits():
    """The halving applies only where max - min overflows: other channels get exactly the
    tables of lo + f * (hi - lo), clamped, as before the overflow fix."""
    g = torch.Generator().manual_seed(3)
    mn = torch.randn(5, 3, generator=g) * 1e30
    mx = mn + torch.rand(5, 3, generator=g) * 1e31
    params = sample_quantization_params(5, 3, 9, generator=g)
    cuts, values = quantize.bin_tables(mn, mx, params)
    lo, hi = mn.reshape(-1, 1), mx.reshape(-1, 1)
    ref_cuts = lo + params.cut_fractions.reshape(15, 8) * (hi - lo)
    ref_cuts = torch.minimum(torch.maximum(ref_cuts, lo), hi)
    left, right = torch.cat([lo, ref_cuts], 1), torch.cat([ref_cuts, hi], 1)
    ref_values = left + params.value_fractions.reshape(15, 9) * (right - left)
    ref_values = torch.minimum(torch.maximum(ref_values, left), right)
    assert torch.equal(cuts, ref_cuts) and torch.equal(values, ref_values)


@pytest.mark.parametrize("backend,dtype", CPU_PATHS)
def test_overflowing_range_in_a_packed_batch(backend, dtype):
    _needs_native(backend)
    v = torch.tensor(OVERFLOWING[dtype], dtype=dtype)
    pts = torch.stack([v, v.flip(0)], 1)  # (4, 2): -max and max in each segment's one channel
    seg = torch.tensor([0, 0, 1, 1])
    params = sample_quantization_params(
        2, 2, 6, dtype=quantize._compute_dtype(dtype), generator=torch.Generator().manual_seed(4)
    )
    y = apply_randomized_quantization(pts, params, channel_dim=-1, segment_ids=seg, backend=backend)
    for s in range(2):  # each segment alone, as a (1, rows, C) sample, checked bin by bin
        sub = QuantizationParams(
            params.cut_fractions[s : s + 1],
            params.value_fractions[s : s + 1],
            params.apply[s : s + 1],
        )
        assert_inside_bins(pts[seg == s].unsqueeze(0), y[seg == s].unsqueeze(0), 2, sub)


# Data scale as a fraction of the dtype's largest number (ranges up to twice it); 0: unit scale.
_FRACTIONS_OF_MAX = st.sampled_from([0.0, 0.3, 0.49, 0.5, 0.9, 1.0])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    path=st.sampled_from(CPU_PATHS),
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    data=st.data(),
    num_bins=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_property_every_output_lies_in_its_bin(path, sizes, data, num_bins, seed):
    """Random layouts, dtypes, bins and scales up to the dtype's largest numbers."""
    backend, dtype = path
    if backend == "native" and quantize._native_kernel() is None:
        return
    channel_dim = data.draw(st.integers(1, len(sizes) - 1))
    fraction_of_max = data.draw(_FRACTIONS_OF_MAX)
    g = torch.Generator().manual_seed(seed)
    big = torch.finfo(dtype).max * fraction_of_max if fraction_of_max else 1.0
    x = ((torch.rand(sizes, generator=g, dtype=torch.float64) * 2 - 1) * big).to(dtype)
    params = sample_quantization_params(
        sizes[0],
        sizes[channel_dim],
        num_bins,
        p=0.9,
        dtype=quantize._compute_dtype(dtype),
        generator=g,
    )
    y = apply_randomized_quantization(x, params, channel_dim=channel_dim, backend=backend)
    sel = params.apply
    assert torch.equal(y[~sel], x[~sel])  # samples the p gate passed through
    if bool(sel.any()):
        sub = QuantizationParams(params.cut_fractions[sel], params.value_fractions[sel], sel[sel])
        assert_inside_bins(x[sel], y[sel], channel_dim, sub)
    if dtype in (torch.float32, torch.float64) and quantize._native_kernel() is not None:
        other = "torch" if backend == "native" else "native"
        assert torch.equal(
            y, apply_randomized_quantization(x, params, channel_dim=channel_dim, backend=other)
        )


# --------------------------------------------------------------------------- NaN and Inf


@pytest.mark.parametrize("backend,dtype", CPU_PATHS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_input_raises_on_every_cpu_path(backend, dtype, bad):
    """The documented behaviour (docs/decisions.md, randomized_quantize's Raises): NaN and
    +-Inf are refused with the sample (or segment) and channel named, never binned."""
    _needs_native(backend)
    x = torch.randn(3, 4, 5).to(dtype)
    x[2, 1, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf in sample 2, channel 1"):
        randomized_quantize(x, 4, backend=backend)
    pts = torch.randn(10, 3).to(dtype)
    pts[7, 2] = bad
    seg = torch.tensor([0] * 5 + [1] * 5)
    with pytest.raises(ValueError, match="NaN or Inf in segment 1, channel 2"):
        randomized_quantize(pts, 4, channel_dim=-1, segment_ids=seg, backend=backend)


@pytest.mark.parametrize("dtype", HALF)
def test_half_inputs_at_the_dtype_max_are_spread_over_their_range(dtype):
    """bfloat16 is binned in float32, whose range it shares: +-max overflowed max - min and
    every output came back as max. float16 (binned in float32 with room to spare) is the
    control."""
    big = torch.finfo(dtype).max
    x = torch.tensor([-big, big, big, -big / 2, 0.0, 1.0], dtype=dtype).view(1, 1, 6)
    ys = torch.stack(
        [
            randomized_quantize(
                x, 7, backend="torch", generator=torch.Generator().manual_seed(seed)
            )
            for seed in range(20)
        ]
    )
    assert bool(torch.isfinite(ys).all() and ((ys >= -big) & (ys <= big)).all())
    assert bool((ys[..., 0] < 0).any()) and bool((ys[..., 1] > 0).all())
    assert ys.unique().numel() > 20


# ------------------------------------------------------------------------ sparse segments


class _Sizes:
    """Records the sample counts the quantizer draws and reduces for (a spy: it runs first)."""

    def __init__(self, monkeypatch, limit: int):
        self.drawn: list[int] = []
        self.reduced: list[int] = []
        sample, reduce = quantize.sample_quantization_params, quantize._segment_min_max

        def spy_sample(num_samples, *args, **kwargs):
            self.drawn.append(num_samples)
            assert num_samples <= limit, f"params drawn for {num_samples} samples"
            return sample(num_samples, *args, **kwargs)

        def spy_reduce(x, ids, num_segments):
            self.reduced.append(num_segments)
            assert num_segments <= limit, f"min/max allocated for {num_segments} segments"
            return reduce(x, ids, num_segments)

        monkeypatch.setattr(quantize, "sample_quantization_params", spy_sample)
        monkeypatch.setattr("rq_core.module.sample_quantization_params", spy_sample)
        monkeypatch.setattr(quantize, "_segment_min_max", spy_reduce)


@pytest.mark.parametrize("backend", ["torch", "native"])
@pytest.mark.parametrize("huge", [10**9, 2**62])
def test_a_huge_segment_id_costs_only_its_rows(monkeypatch, backend, huge):
    _needs_native(backend)
    sizes = _Sizes(monkeypatch, limit=4)
    x = torch.randn(4, 3)
    ids = torch.tensor([0, 0, huge, huge])
    y = randomized_quantize(
        x,
        8,
        channel_dim=-1,
        segment_ids=ids,
        backend=backend,
        generator=torch.Generator().manual_seed(5),
    )
    assert sizes.drawn == [2] and sizes.reduced == [2]
    # The same as the ids renumbered 0, 1 by hand: present segments in increasing id order.
    renumbered = randomized_quantize(
        x,
        8,
        channel_dim=-1,
        segment_ids=torch.tensor([0, 0, 1, 1]),
        backend=backend,
        generator=torch.Generator().manual_seed(5),
    )
    assert torch.equal(y, renumbered)


def test_sparse_ids_gradient_follows_the_gate_of_each_segment():
    ids = torch.tensor([10**9, 4, 10**9, 4, 77, 77])
    renumbered = torch.tensor([2, 0, 2, 0, 1, 1])
    grads, outs = [], []
    for seg in (ids, renumbered):
        pts = torch.randn(6, 3, generator=torch.Generator().manual_seed(8)).requires_grad_(True)
        g = torch.Generator().manual_seed(9)
        y = randomized_quantize(pts, 4, channel_dim=-1, segment_ids=seg, p=0.5, generator=g)
        (y * torch.arange(3.0)).sum().backward()
        grads.append(pts.grad)
        outs.append(y.detach())
    assert torch.equal(outs[0], outs[1]) and torch.equal(grads[0], grads[1])
    passed = (outs[0] == torch.randn(6, 3, generator=torch.Generator().manual_seed(8))).all(1)
    assert 0 < int(passed.sum()) < 6  # this seed gates some segments through, not all
    assert torch.equal(grads[0][passed], torch.arange(3.0).expand(int(passed.sum()), 3))


def test_sparse_ids_through_the_module_replay(monkeypatch):
    sizes = _Sizes(monkeypatch, limit=3)
    aug = RandomizedQuantization(num_bins=5, channel_dim=-1, p=0.5)
    pts = torch.randn(30, 3)
    ids = torch.tensor([7 * 10**8] * 10 + [3] * 10 + [10**9] * 10)[torch.randperm(30)]
    y = aug(pts, segment_ids=ids, generator=torch.Generator().manual_seed(6))
    assert aug._params.num_samples == 3 and sizes.reduced == [3]
    assert torch.equal(aug(pts, params=aug._params, segment_ids=ids), y)


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_params_per_id_with_sparse_ids_equal_a_loop_over_segments(monkeypatch, backend):
    """Params with a row per id keep their meaning (row = id) when the ids get compacted."""
    _needs_native(backend)
    g = torch.Generator().manual_seed(7)
    pts = torch.randn(6, 3, generator=g)
    ids = torch.tensor([40, 2, 40, 2, 40, 2])
    params = sample_quantization_params(41, 3, 6, p=0.7, generator=g)
    sizes = _Sizes(monkeypatch, limit=2)
    y = apply_randomized_quantization(pts, params, channel_dim=-1, segment_ids=ids, backend=backend)
    assert sizes.reduced == [2]
    for s in (2, 40):
        sub = QuantizationParams(
            params.cut_fractions[s : s + 1],
            params.value_fractions[s : s + 1],
            params.apply[s : s + 1],
        )
        alone = apply_randomized_quantization(pts[ids == s].unsqueeze(0), sub, channel_dim=-1)
        assert torch.equal(alone[0], y[ids == s])


def test_sparse_ids_with_too_few_params_name_both_counts():
    params = sample_quantization_params(1, 3, 4)
    with pytest.raises(ValueError, match=r"2 distinct ids up to 99: .*a row per id \(100\)"):
        apply_randomized_quantization(
            torch.randn(4, 3), params, channel_dim=-1, segment_ids=torch.tensor([0, 0, 99, 99])
        )


def test_dense_ids_with_empty_segments_still_draw_one_row_per_id(monkeypatch):
    """Normal packed batches are not renumbered: the same draws, the same output as ever."""
    sizes = _Sizes(monkeypatch, limit=10**6)
    pts = torch.randn(30, 3)
    seg = torch.tensor([0] * 10 + [2] * 10 + [5] * 10)  # 6 ids on 30 rows, 3 of them empty
    randomized_quantize(pts, 4, channel_dim=-1, segment_ids=seg)
    ids = torch.tensor([0, 1, 7, 7])  # 8 ids on 4 rows: at the threshold (2 per row)
    randomized_quantize(torch.randn(4, 3), 4, channel_dim=-1, segment_ids=ids)
    assert sizes.drawn == [6, 8]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("bad", [2, 40000, -1])
def test_segment_min_max_refuses_ids_outside_its_segments(dtype, bad):
    """The compiled kernel writes at the id's row: an id >= num_segments wrote past the
    outputs (heap corruption) where the torch path raised an IndexError."""
    x = torch.randn(4, 3).to(dtype)
    with pytest.raises(ValueError, match=rf"\[0, num_segments=2\), found {bad}"):
        segment_min_max(x, torch.tensor([0, 0, 1, bad]), 2)
