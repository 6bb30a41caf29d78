"""Behaviour of rq_core.randomized_quantize: the paper's quantizer
(Wu et al., ICCV 2023, Sec. 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rq_core import (
    QuantizationParams,
    apply_randomized_quantization,
    randomized_quantize,
    sample_quantization_params,
)
from scipy import stats

# (shape, channel_dim) layouts: images, audio log-mel, tokens, a middle channel axis.
LAYOUTS = [
    ((4, 3, 9, 11), 1),
    ((3, 1, 16, 12), 1),
    ((2, 13, 6), -1),
    ((3, 5, 4, 7), 2),
]


def per_channel(x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """(S, C, M) view: every row one (sample, channel)."""
    dim = channel_dim % x.ndim
    return x.movedim(dim, 1).reshape(x.shape[0], x.shape[dim], -1)


def dense_oracle(x: torch.Tensor, num_bins: int, g: torch.Generator) -> torch.Tensor:
    """The published algorithm done the obvious way, for (B, C, M) inputs: a one-hot mask
    of shape (B, C, n, M) selects each element's bin (what the reference module does)."""
    B, C, M = x.shape
    mn = x.amin(-1, keepdim=True)
    mx = x.amax(-1, keepdim=True)
    cuts = mn + torch.rand(B, C, num_bins - 1, generator=g, dtype=x.dtype).sort(-1).values * (
        mx - mn
    )
    left = torch.cat([mn, cuts], -1)
    right = torch.cat([cuts, mx], -1)
    r = torch.rand(B, C, num_bins, generator=g, dtype=x.dtype)
    values = left + r * (right - left)
    xe = x.unsqueeze(2)  # (B, C, 1, M) against (B, C, n, 1) edges
    last = torch.arange(num_bins) == num_bins - 1
    inside = (xe >= left.unsqueeze(-1)) & (
        (xe < right.unsqueeze(-1)) | (last.view(1, 1, -1, 1) & (xe <= right.unsqueeze(-1)))
    )
    assert (inside.sum(2) == 1).all()  # the bins partition [min, max]
    idx = inside.int().argmax(2)
    return torch.gather(values, 2, idx)


@pytest.mark.parametrize("shape,channel_dim", LAYOUTS)
@pytest.mark.parametrize("num_bins", [1, 2, 5, 8, 30])
def test_output_within_channel_range_and_at_most_n_values(shape, channel_dim, num_bins):
    g = torch.Generator().manual_seed(num_bins)
    x = torch.randn(shape, generator=g)
    y = randomized_quantize(x, num_bins, channel_dim=channel_dim, generator=g)
    assert y.shape == x.shape and y.dtype == x.dtype
    xs, ys = per_channel(x, channel_dim), per_channel(y, channel_dim)
    assert (ys >= xs.amin(-1, keepdim=True)).all()
    assert (ys <= xs.amax(-1, keepdim=True)).all()
    for s in range(xs.shape[0]):
        for c in range(xs.shape[1]):
            assert ys[s, c].unique().numel() <= num_bins


def _reference_bins(x, params, channel_dim):
    """Bin edges computed in the test from the sampled fractions (float64 data)."""
    xs = per_channel(x, channel_dim)
    mn = xs.amin(-1, keepdim=True)
    mx = xs.amax(-1, keepdim=True)
    cuts = (mn + params.cut_fractions * (mx - mn)).clamp(mn, mx)
    return xs, torch.cat([mn, cuts], -1), torch.cat([cuts, mx], -1)


@pytest.mark.parametrize("shape,channel_dim", LAYOUTS)
@pytest.mark.parametrize("spacing", ["random", "uniform"])
@pytest.mark.parametrize("collapse", ["random", "middle"])
def test_every_output_lies_in_the_bin_of_its_input(shape, channel_dim, spacing, collapse):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    S, C = x.shape[0], x.shape[channel_dim]
    params = sample_quantization_params(
        S, C, 6, spacing=spacing, collapse=collapse, dtype=torch.float64, generator=g
    )
    y = apply_randomized_quantization(x, params, channel_dim=channel_dim)
    xs, left, right = _reference_bins(x, params, channel_dim)
    ys = per_channel(y, channel_dim)
    # bin id = number of cuts <= x (bins are [a_i, a_i+1), the last one closed at max)
    bin_id = (xs.unsqueeze(-1) >= left[..., 1:].unsqueeze(2)).sum(-1)
    lo = torch.gather(left, 2, bin_id)
    hi = torch.gather(right, 2, bin_id)
    assert (ys >= lo).all() and (ys <= hi).all()
    if collapse == "middle":
        torch.testing.assert_close(ys, (lo + hi) / 2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape,channel_dim", LAYOUTS)
def test_map_is_monotone_non_decreasing_per_channel(shape, channel_dim):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(shape, generator=g)
    y = randomized_quantize(x, 7, channel_dim=channel_dim, generator=g)
    xs, ys = per_channel(x, channel_dim), per_channel(y, channel_dim)
    order = xs.argsort(-1)
    ys_sorted = torch.gather(ys, -1, order)
    assert (ys_sorted[..., 1:] >= ys_sorted[..., :-1]).all()


def test_uniform_middle_is_plain_uniform_quantization():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 50, generator=g, dtype=torch.float64)
    n = 4
    y = randomized_quantize(x, n, spacing="uniform", collapse="middle")
    mn, mx = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    width = (mx - mn) / n
    k = ((x - mn) / width).floor().clamp(max=n - 1)
    torch.testing.assert_close(y, mn + (k + 0.5) * width, rtol=0, atol=1e-9)


def test_channels_and_samples_are_independent():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 20, generator=g)
    params = sample_quantization_params(3, 4, 5, generator=g)
    y = apply_randomized_quantization(x, params)
    # Changing (sample 1, channel 2) alone changes nothing else.
    x2 = x.clone()
    x2[1, 2] = x2[1, 2] * 10 + 3
    y2 = apply_randomized_quantization(x2, params)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1, 2] = False
    assert torch.equal(y[mask], y2[mask])
    assert not torch.equal(y[1, 2], y2[1, 2])
    # Each (sample, channel) equals quantizing it alone with its own slice of the params.
    for s in range(3):
        for c in range(4):
            sub = QuantizationParams(
                params.cut_fractions[s : s + 1, c : c + 1],
                params.value_fractions[s : s + 1, c : c + 1],
                params.apply[s : s + 1],
            )
            alone = apply_randomized_quantization(x[s : s + 1, c : c + 1], sub)
            assert torch.equal(alone[0, 0], y[s, c])


def test_same_generator_state_same_output_and_fresh_draws_differ():
    x = torch.randn(4, 3, 10, 10)
    a = randomized_quantize(x, 8, generator=torch.Generator().manual_seed(7))
    b = randomized_quantize(x, 8, generator=torch.Generator().manual_seed(7))
    c = randomized_quantize(x, 8, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_p_zero_is_identity_and_p_one_always_quantizes():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 2, 40, generator=g)
    assert torch.equal(randomized_quantize(x, 3, p=0.0, generator=g), x)
    y = randomized_quantize(x, 3, p=1.0, generator=g)
    for s in range(16):
        assert not torch.equal(y[s], x[s])
        assert all(y[s, c].unique().numel() <= 3 for c in range(2))


def test_p_gates_whole_samples():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(200, 2, 30, generator=g)
    params = sample_quantization_params(200, 2, 3, p=0.5, generator=g)
    y = apply_randomized_quantization(x, params)
    unchanged = (y == x).flatten(1).all(1)
    assert torch.equal(unchanged, ~params.apply)
    assert 60 < int(params.apply.sum()) < 140  # about half of 200


def test_segment_ids_equals_a_loop_over_samples():
    g = torch.Generator().manual_seed(6)
    sizes = [17, 1, 40, 9]
    pts = torch.randn(sum(sizes), 3, generator=g)
    seg = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    perm = torch.randperm(len(seg), generator=g)  # packed order need not be sorted
    pts, seg = pts[perm], seg[perm]
    params = sample_quantization_params(len(sizes), 3, 30, generator=g)
    y = apply_randomized_quantization(pts, params, channel_dim=-1, segment_ids=seg)
    for s in range(len(sizes)):
        sub = QuantizationParams(
            params.cut_fractions[s : s + 1],
            params.value_fractions[s : s + 1],
            params.apply[s : s + 1],
        )
        alone = apply_randomized_quantization(pts[seg == s].unsqueeze(0), sub, channel_dim=-1)
        assert torch.equal(alone[0], y[seg == s])


@pytest.mark.parametrize("num_bins", [8, 30])
def test_sorted_large_segments_equal_a_loop_over_samples(num_bins):
    """Sorted packed batches with big segments take the slice-by-segment path."""
    g = torch.Generator().manual_seed(8)
    sizes = [700, 0, 300, 1200]
    pts = torch.randn(sum(sizes), 3, generator=g)
    seg = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    params = sample_quantization_params(len(sizes), 3, num_bins, p=0.7, generator=g)
    params = QuantizationParams(
        params.cut_fractions, params.value_fractions, torch.tensor([True, True, False, True])
    )
    y = apply_randomized_quantization(pts, params, channel_dim=-1, segment_ids=seg)
    unsorted = apply_randomized_quantization(
        pts.flip(0), params, channel_dim=-1, segment_ids=seg.flip(0)
    ).flip(0)
    assert torch.equal(y, unsorted)  # same result through the general (gather) path
    assert torch.equal(y[seg == 2], pts[seg == 2])
    for s in (0, 3):
        sub = QuantizationParams(
            params.cut_fractions[s : s + 1],
            params.value_fractions[s : s + 1],
            params.apply[s : s + 1],
        )
        alone = apply_randomized_quantization(pts[seg == s].unsqueeze(0), sub, channel_dim=-1)
        assert torch.equal(alone[0], y[seg == s])


def test_segment_ids_with_p_gate_and_empty_segment():
    g = torch.Generator().manual_seed(9)
    pts = torch.randn(30, 3, generator=g)
    seg = torch.tensor([0] * 10 + [2] * 20)  # segment 1 is empty
    params = sample_quantization_params(3, 3, 4, p=0.5, generator=g)
    params = QuantizationParams(
        params.cut_fractions, params.value_fractions, torch.tensor([True, True, False])
    )
    y = apply_randomized_quantization(pts, params, channel_dim=-1, segment_ids=seg)
    assert torch.equal(y[10:], pts[10:])
    assert not torch.equal(y[:10], pts[:10])


def test_constant_channel_passes_through_unchanged():
    x = torch.randn(2, 3, 8, 8)
    x[1, 2] = 0.123
    x[0, 0] = -4.0
    y = randomized_quantize(x, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y[1, 2], x[1, 2])
    assert torch.equal(y[0, 0], x[0, 0])
    assert not torch.equal(y[0, 1], x[0, 1])


@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 4), (2, 3, 0)])
def test_empty_input_returns_empty(shape):
    x = torch.empty(shape)
    y = randomized_quantize(x, 4)
    assert y.shape == x.shape and y.numel() == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_floating_dtypes(dtype):
    x = torch.randn(2, 3, 12, 12).to(dtype)
    y = randomized_quantize(x, 5, generator=torch.Generator().manual_seed(0))
    assert y.dtype == dtype
    xs, ys = per_channel(x, 1), per_channel(y, 1)
    assert (ys >= xs.amin(-1, keepdim=True)).all() and (ys <= xs.amax(-1, keepdim=True)).all()
    assert all(ys[s, c].unique().numel() <= 5 for s in range(2) for c in range(3))


def test_gradient_is_zero_by_default_and_identity_with_straight_through():
    x = torch.randn(3, 2, 10, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 10, dtype=torch.float64)
    (randomized_quantize(x, 4) * w).sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    x.grad = None
    (randomized_quantize(x, 4, straight_through=True) * w).sum().backward()
    assert torch.equal(x.grad, w)


def test_gradient_passes_for_samples_the_gate_left_alone():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 5, requires_grad=True)
    params = sample_quantization_params(4, 2, 3, generator=g)
    params = QuantizationParams(
        params.cut_fractions, params.value_fractions, torch.tensor([True, False, True, False])
    )
    apply_randomized_quantization(x, params).sum().backward()
    assert torch.equal(x.grad[[1, 3]], torch.ones(2, 2, 5))
    assert torch.equal(x.grad[[0, 2]], torch.zeros(2, 2, 5))


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_input_raises_naming_sample_and_channel(bad):
    x = torch.randn(3, 4, 5)
    x[2, 1, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf in sample 2, channel 1"):
        randomized_quantize(x, 4)


def test_non_finite_in_segment_raises_naming_segment():
    pts = torch.randn(10, 3)
    pts[7, 2] = float("nan")
    seg = torch.tensor([0] * 5 + [1] * 5)
    with pytest.raises(ValueError, match="segment 1, channel 2"):
        randomized_quantize(pts, 4, channel_dim=-1, segment_ids=seg)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_non_floating_dtype_raises_type_error(dtype):
    with pytest.raises(TypeError, match="floating-point"):
        randomized_quantize(torch.zeros(2, 3, 4, dtype=dtype), 4)


@pytest.mark.parametrize(
    "num_bins,exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_bad_num_bins(num_bins, exc):
    with pytest.raises(exc, match="num_bins"):
        randomized_quantize(torch.randn(2, 3, 4), num_bins)


@pytest.mark.parametrize(
    "channel_dim,msg", [(0, "sample axis"), (3, "out of range"), (-4, "out of range")]
)
def test_bad_channel_dim(channel_dim, msg):
    with pytest.raises(ValueError, match=msg):
        randomized_quantize(torch.randn(2, 3, 4), 4, channel_dim=channel_dim)


def test_one_dimensional_input_raises():
    with pytest.raises(ValueError, match="sample axis"):
        randomized_quantize(torch.randn(5), 4)


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"collapse": "mean"}, ValueError, "collapse"),
        ({"spacing": "log"}, ValueError, "spacing"),
        ({"p": 1.5}, ValueError, "p must be"),
        ({"p": -0.1}, ValueError, "p must be"),
    ],
)
def test_bad_options(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        randomized_quantize(torch.randn(2, 3, 4), 4, **kwargs)


@pytest.mark.parametrize(
    "x_shape,seg,channel_dim,exc,msg",
    [
        ((10, 3), torch.zeros(9, dtype=torch.long), -1, ValueError, r"shape \(10,\)"),
        ((10, 3), torch.zeros(10, 1, dtype=torch.long), -1, ValueError, r"shape \(10,\)"),
        ((10, 3), torch.zeros(10), -1, TypeError, "integer"),
        ((10, 3), torch.full((10,), -1), -1, ValueError, ">= 0"),
        ((2, 10, 3), torch.zeros(2, dtype=torch.long), -1, ValueError, "packed 2-d"),
    ],
)
def test_bad_segment_ids(x_shape, seg, channel_dim, exc, msg):
    with pytest.raises(exc, match=msg):
        randomized_quantize(torch.randn(x_shape), 4, channel_dim=channel_dim, segment_ids=seg)


def test_params_for_another_shape_raise():
    params = sample_quantization_params(2, 3, 4)
    with pytest.raises(ValueError, match="sampled for 2 samples x 3 channels"):
        apply_randomized_quantization(torch.randn(2, 5, 4), params)


# ------------------------------------------------- statistics vs. the dense oracle


def _error_and_distinct_stats(fn, draws: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    data = torch.Generator().manual_seed(1000)
    x = torch.rand(8, 2, 64, generator=data, dtype=torch.float64) ** 2  # skewed data
    errors, distinct = [], []
    for _ in range(draws):
        y = fn(x, g)
        # Elements of one channel share its quantizer, so they are not independent draws:
        # the unit of the test is the channel (mean relative error of each channel).
        rel = (y - x).abs() / (x.amax(-1, keepdim=True) - x.amin(-1, keepdim=True))
        errors.append(rel.mean(-1).flatten())
        distinct.extend(int(y[s, c].unique().numel()) for s in range(8) for c in range(2))
    return torch.cat(errors).numpy(), np.array(distinct)


def test_statistics_agree_with_a_dense_oracle():
    n = 5
    ours_err, ours_k = _error_and_distinct_stats(
        lambda x, g: randomized_quantize(x, n, generator=g), 60, 11
    )
    ref_err, ref_k = _error_and_distinct_stats(lambda x, g: dense_oracle(x, n, g), 60, 12)
    # Quantization error distribution: the two-sample KS test does not separate them ...
    assert stats.ks_2samp(ours_err, ref_err).pvalue > 0.01
    # ... and the distinct-value counts per channel match in distribution (chi-square).
    counts = np.array([[np.sum(k == v) for v in range(1, n + 1)] for k in (ours_k, ref_k)])
    counts = counts[:, counts.sum(0) > 0]
    assert stats.chi2_contingency(counts).pvalue > 0.01


def test_oracle_comparison_detects_a_different_quantizer():
    """The statistical test above has power: 3 bins are told apart from 5."""
    ours_err, _ = _error_and_distinct_stats(
        lambda x, g: randomized_quantize(x, 4, generator=g), 60, 11
    )
    ref_err, _ = _error_and_distinct_stats(lambda x, g: dense_oracle(x, 5, g), 60, 12)
    assert stats.ks_2samp(ours_err, ref_err).pvalue < 1e-4


# ------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 4),
    channels=st.integers(1, 4),
    length=st.integers(1, 40),
    num_bins=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
    channel_last=st.booleans(),
)
def test_properties_hold_for_any_shape(batch, channels, length, num_bins, seed, channel_last):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, length, channels) if channel_last else (batch, channels, length)
    x = torch.randn(shape, generator=g) * math.exp(seed % 7 - 3)
    cd = -1 if channel_last else 1
    y = randomized_quantize(x, num_bins, channel_dim=cd, generator=g)
    xs, ys = per_channel(x, cd), per_channel(y, cd)
    assert (ys >= xs.amin(-1, keepdim=True)).all() and (ys <= xs.amax(-1, keepdim=True)).all()
    order = xs.argsort(-1)
    ysort = torch.gather(ys, -1, order)
    assert (ysort[..., 1:] >= ysort[..., :-1]).all()
    for s in range(batch):
        for c in range(channels):
            assert ys[s, c].unique().numel() <= num_bins


def test_works_under_torch_compile():
    x = torch.randn(2, 3, 8, 8)
    f = torch.compile(lambda t, g: randomized_quantize(t, 5, generator=g), backend="aot_eager")
    y = f(x, torch.Generator().manual_seed(0))
    ref = randomized_quantize(x, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, ref)


@pytest.mark.slow
def test_works_under_torch_compile_inductor():
    x = torch.randn(2, 3, 8, 8)
    f = torch.compile(lambda t, g: randomized_quantize(t, 5, generator=g))
    y = f(x, torch.Generator().manual_seed(0))
    ref = randomized_quantize(x, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, ref)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_and_device():
    x = torch.randn(4, 3, 16, 16, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    y = randomized_quantize(x, 8, generator=g)
    assert y.device == x.device
    with pytest.raises(ValueError, match="generator is on"):
        randomized_quantize(x, 8, generator=torch.Generator().manual_seed(0))
