"""The compiled CPU kernel (rq_core._native) against the torch path, bit for bit.

``backend="auto"`` takes the kernel for float32/float64 CPU tensors, so most other quantizer
tests run through it too; these tests pin it to ``backend="torch"`` on the same sampled
parameters across layouts, bin counts on both sides of its select/search crossovers, packed
batches (sorted runs, unsorted rows, runs longer than its buffer), the p gate, the threaded
row split and a fork.
"""

from __future__ import annotations

import multiprocessing
import sysconfig

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rq_core import quantize
from rq_core.quantize import (
    apply_randomized_quantization,
    randomized_quantize,
    sample_quantization_params,
    segment_min_max,
)

DTYPES = [torch.float32, torch.float64]
# 1 bin (no cut), few cuts, both sides of the 24-cut (contiguous) and 32-cut (channels last,
# packed) crossovers between the select chain and the search, and many bins.
BINS = [1, 2, 5, 8, 24, 25, 26, 33, 34, 40, 100]
LAYOUTS = [
    ((3, 3, 9, 11), 1),
    ((2, 1, 8, 600), 1),  # rows longer than one select run (512)
    ((3, 7, 6), -1),
    ((2, 4, 3, 5), 2),
    ((1, 300, 6), -1),
    ((2, 5, 1), 1),
    ((2, 3, 2, 4, 5), 3),
]


def _compiler_available() -> bool:
    import shutil

    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


@pytest.fixture(autouse=True)
def _needs_kernel():
    if quantize._native_kernel() is None:
        pytest.skip("rq_core._native is not built (covered by test_kernel_is_built)")


def _both(x, params, **kw):
    ours = apply_randomized_quantization(x, params, backend="native", **kw)
    reference = apply_randomized_quantization(x, params, backend="torch", **kw)
    return ours, reference


def test_kernel_is_built():
    """Where a C compiler exists (CI, the dev setup), installing rq-core must build the kernel:
    the extension is optional, so a broken build would otherwise pass silently."""
    if not _compiler_available():
        pytest.skip("no C compiler here: rq-core falls back to the torch path by design")
    assert quantize._native_kernel() is not None


@pytest.mark.parametrize("shape,channel_dim", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_bins", BINS)
def test_regular_layouts_equal_torch(shape, channel_dim, dtype, num_bins):
    g = torch.Generator().manual_seed(num_bins)
    x = torch.randn(shape, dtype=dtype, generator=g)
    dim = channel_dim % x.ndim
    params = sample_quantization_params(
        shape[0], shape[dim], num_bins, p=0.6, dtype=dtype, generator=g
    )
    ours, reference = _both(x, params, channel_dim=channel_dim)
    assert ours.dtype == dtype and ours.shape == x.shape
    assert torch.equal(ours, reference)


def test_values_on_cuts_and_the_max_go_where_the_torch_path_puts_them():
    # Every element sits exactly on a cut point or on min/max: the ">=" of both paths decides.
    x = torch.tensor([[[0.0, 0.25, 0.5, 0.75, 1.0, 0.5]]]).repeat(2, 3, 1)
    params = sample_quantization_params(2, 3, 4, spacing="uniform")
    ours, reference = _both(x, params)
    assert torch.equal(ours, reference)
    # And the channels-last form of the same numbers.
    ours, reference = _both(x.transpose(1, 2).contiguous(), params, channel_dim=-1)
    assert torch.equal(ours, reference)


def test_non_contiguous_input():
    x = torch.randn(4, 10, 3, 7).permute(0, 2, 1, 3)  # (4, 3, 10, 7), not contiguous
    params = sample_quantization_params(4, 3, 8)
    ours, reference = _both(x, params)
    assert torch.equal(ours, reference)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_bins", [1, 5, 30, 33, 40])
@pytest.mark.parametrize("order", ["sorted", "unsorted", "long_runs", "short_runs"])
def test_packed_segments_equal_torch(dtype, num_bins, order):
    g = torch.Generator().manual_seed(7)
    if order == "long_runs":  # runs longer than the kernel's 512-row buffer, one empty segment
        seg = torch.tensor([0] * 1300 + [2] * 700 + [3] * 5)
    elif order == "short_runs":  # alternating rows: every run shorter than a select run
        seg = torch.arange(400) % 5
    else:
        seg = torch.randint(0, 6, (900,), generator=g)
        if order == "sorted":
            seg = seg.sort().values
    x = torch.randn(seg.numel(), 3, dtype=dtype, generator=g)
    S = int(seg.max()) + 1
    params = sample_quantization_params(S, 3, num_bins, p=0.5, dtype=dtype, generator=g)
    for ids in (seg, seg.to(torch.int32)):
        ours, reference = _both(x, params, channel_dim=-1, segment_ids=ids)
        assert torch.equal(ours, reference)


@pytest.mark.parametrize("dtype", DTYPES)
def test_segment_min_max_equals_scatter_reduce(dtype, monkeypatch):
    g = torch.Generator().manual_seed(3)
    seg = torch.randint(0, 8, (500,), generator=g)
    seg[seg == 5] = 6  # segment 5 is empty: min = max = 0 on both paths
    x = torch.randn(500, 4, dtype=dtype, generator=g)
    native = segment_min_max(x, seg, 9)
    monkeypatch.setattr(quantize, "_native_usable", lambda t: False)
    reference = segment_min_max(x, seg, 9)
    for a, b in zip(native, reference, strict=True):
        assert torch.equal(a, b)


def test_segment_min_max_keeps_a_nan_in_its_channel():
    x = torch.randn(50, 3)
    seg = torch.arange(50) % 2
    x[10, 1] = float("nan")  # row 10 is in segment 0
    mn, mx, _ = segment_min_max(x, seg, 2)
    assert torch.isnan(mn[0, 1]) and torch.isnan(mx[0, 1])
    assert torch.isfinite(mn[1]).all() and torch.isfinite(mn[0, [0, 2]]).all()
    with pytest.raises(ValueError, match="segment 0, channel 1"):
        randomized_quantize(x, 5, channel_dim=-1, segment_ids=seg)


class _RecordingKernel:
    """Wraps the real module and records the row ranges each entry point was called with."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        fn = getattr(self.real, name)

        def call(*args):
            self.calls.append((name, args[-2], args[-1]))
            return fn(*args)

        return call


@pytest.mark.parametrize("case", ["regular", "channels_last", "segments"])
def test_rows_split_over_threads_cover_every_row_once(case, monkeypatch):
    recorder = _RecordingKernel(quantize._native_kernel())
    monkeypatch.setattr(quantize, "_native_kernel", lambda: recorder)
    monkeypatch.setattr(quantize, "_NATIVE_PARALLEL_MIN", 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        if case == "segments":
            x, kw, rows = (
                torch.randn(1000, 3),
                {"segment_ids": torch.arange(1000) // 100, "channel_dim": -1},
                1000,
            )
            S, C = 10, 3
        elif case == "channels_last":
            x, kw, rows = torch.randn(5, 20, 16), {"channel_dim": -1}, 100
            S, C = 5, 16
        else:
            x, kw, rows = torch.randn(7, 3, 16, 16), {}, 7
            S, C = 7, 3
        params = sample_quantization_params(S, C, 6)
        ours = apply_randomized_quantization(x, params, backend="native", **kw)
    finally:
        torch.set_num_threads(threads)
    ranges = sorted((r0, r1) for name, r0, r1 in recorder.calls if name.startswith("bin_"))
    assert len(ranges) == 3
    assert ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert torch.equal(ours, apply_randomized_quantization(x, params, backend="torch", **kw))


def _quantize_in_child(queue):
    torch.set_num_threads(2)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    params = sample_quantization_params(4, 3, 8, generator=torch.Generator().manual_seed(2))
    queue.put(apply_randomized_quantization(x, params, backend="native").tolist())


def test_threaded_split_works_in_a_forked_child(monkeypatch):
    """A DataLoader worker is a fork of a process whose pool threads did not survive it."""
    monkeypatch.setattr(quantize, "_NATIVE_PARALLEL_MIN", 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        params = sample_quantization_params(4, 3, 8, generator=torch.Generator().manual_seed(2))
        expected = apply_randomized_quantization(x, params, backend="native")  # parent's pool
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_quantize_in_child, args=(queue,))
        child.start()
        got = queue.get(timeout=60)
        child.join(timeout=60)
    finally:
        torch.set_num_threads(threads)
    assert child.exitcode == 0
    assert torch.equal(torch.tensor(got), expected)


def test_auto_takes_the_kernel_for_float_cpu_tensors(monkeypatch):
    def torch_path(*args, **kwargs):
        raise AssertionError("the torch path ran where the compiled kernel should have")

    monkeypatch.setattr(quantize, "_quantize_regular_torch", torch_path)
    monkeypatch.setattr(quantize, "_quantize_segments_torch", torch_path)
    randomized_quantize(torch.randn(2, 3, 8, 8), 4)
    randomized_quantize(torch.randn(50, 3), 4, channel_dim=-1, segment_ids=torch.arange(50) // 10)


def test_half_inputs_take_the_torch_path(monkeypatch):
    def native_path(*args, **kwargs):
        raise AssertionError("the compiled kernel ran on a half tensor")

    monkeypatch.setattr(quantize, "_quantize_regular_native", native_path)
    for dtype in (torch.float16, torch.bfloat16):
        randomized_quantize(torch.randn(2, 3, 8, 8).to(dtype), 4)
    with pytest.raises(ValueError, match="float32/float64 CPU tensor, got torch.float16"):
        randomized_quantize(torch.randn(2, 3, 8, 8).half(), 4, backend="native")


def test_missing_kernel_falls_back_or_says_so(monkeypatch):
    monkeypatch.setattr(quantize, "_native_kernel", lambda: None)
    x = torch.randn(2, 3, 8, 8)
    params = sample_quantization_params(2, 3, 4)
    assert torch.equal(
        apply_randomized_quantization(x, params),
        apply_randomized_quantization(x, params, backend="torch"),
    )
    with pytest.raises(ValueError, match="rq_core._native was not built"):
        apply_randomized_quantization(x, params, backend="native")


def test_gradients_match_torch_path():
    x = torch.randn(3, 2, 5, 5)
    params = sample_quantization_params(3, 2, 6, p=0.5, generator=torch.Generator().manual_seed(0))
    for straight_through in (False, True):
        grads = []
        for backend in ("native", "torch"):
            leaf = x.clone().requires_grad_(True)
            apply_randomized_quantization(
                leaf, params, straight_through=straight_through, backend=backend
            ).sum().backward()
            grads.append(leaf.grad)
        assert torch.equal(grads[0], grads[1])


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    data=st.data(),
    num_bins=st.integers(1, 40),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_property_any_layout_equals_torch(sizes, data, num_bins, dtype, seed):
    dim = data.draw(st.integers(1, len(sizes) - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sizes, dtype=dtype, generator=g)
    params = sample_quantization_params(
        sizes[0], sizes[dim], num_bins, p=0.7, dtype=dtype, generator=g
    )
    ours, reference = _both(x, params, channel_dim=dim)
    assert torch.equal(ours, reference)
