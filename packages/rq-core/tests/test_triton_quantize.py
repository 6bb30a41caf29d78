"""The fused Triton kernels (rq_core._triton_quantize) against the torch path.

Every kernel test runs twice, once per target of the ``target`` fixture:

- ``interpreter``: CPU tensors through Triton's interpreter (the fixture sets TRITON_INTERPRET=1
  and re-imports the module so its kernels are built as interpreted functions, then restores
  the compiled build);
- ``cuda`` (marked ``gpu``, skipped without CUDA): the compiled kernels on CUDA tensors, against
  the torch path on the same device -- what ``pytest -m gpu`` (scripts/gpu_acceptance.sh)
  runs on a GPU machine.

Agreement with the torch path is demanded bit for bit (torch.equal) for the same sampled
parameters, over every layout, dtype, bin count, packed order, p gate and generator case. A
separate test compiles the kernels for an sm_90 target (no GPU needed: Triton ships ptxas),
which catches what the lenient interpreter lets through.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
from dataclasses import dataclass
from types import ModuleType

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("triton", reason="the Triton backend needs the triton package")

from rq_core import quantize  # noqa: E402
from rq_core.quantize import (  # noqa: E402
    QuantizationParams,
    apply_randomized_quantization,
    randomized_quantize,
    sample_quantization_params,
)

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]

# (shape, channel_dim): images, a single-channel spectrogram, tokens (channel last), a channel
# in the middle with axes on both sides, long rows (several B tiles), many tokens (several A
# tiles), and odd small sizes.
LAYOUTS = [
    ((3, 3, 9, 11), 1),
    ((2, 1, 8, 13), 1),
    ((3, 7, 6), -1),
    ((2, 4, 3, 5), 2),
    ((1, 2, 48, 48), 1),
    ((1, 300, 6), -1),
    ((1, 5, 1), 1),
]


def _reload(interpret: bool):
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"
    else:
        os.environ.pop("TRITON_INTERPRET", None)
    import rq_core._triton_quantize as module

    return importlib.reload(module)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
# Where the kernels run: Triton's CPU interpreter everywhere, the compiled kernels on a GPU.
TARGETS = [
    pytest.param("interpreter", id="interpreter"),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.gpu, needs_cuda]),
]


@dataclass
class Target:
    """The kernel module built for one target and the device its tensors live on."""

    kernels: ModuleType
    device: torch.device

    def put(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device)


@contextlib.contextmanager
def _built_for(where: str):
    before = os.environ.get("TRITON_INTERPRET")
    interpret = where == "interpreter"
    module = _reload(interpret=interpret)
    try:
        yield Target(module, torch.device("cpu" if interpret else "cuda"))
    finally:
        _reload(interpret=before == "1")


@pytest.fixture(params=TARGETS)
def target(request):
    """The kernels for one target (interpreted on CPU, or compiled on CUDA); restored after."""
    with _built_for(request.param) as built:
        yield built


def _params(x: torch.Tensor, dim: int, num_bins: int, seed: int, **kw):
    """Parameters drawn on CPU from ``seed`` (the same draws for every target), on x's device."""
    g = torch.Generator().manual_seed(seed)
    S = x.shape[0] if "num_samples" not in kw else kw.pop("num_samples")
    params = sample_quantization_params(
        S, x.shape[dim], num_bins, dtype=quantize._compute_dtype(x.dtype), generator=g, **kw
    )
    return params.to(x.device)


def _both(x, params, **kw):
    ours = apply_randomized_quantization(x, params, backend="triton", **kw)
    reference = apply_randomized_quantization(x, params, backend="torch", **kw)
    return ours, reference


def _assert_identical(ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    if not torch.equal(ours, reference):
        diff = (ours != reference).nonzero()
        first = tuple(int(v) for v in diff[0])
        raise AssertionError(
            f"{len(diff)} elements differ; first at {first}: "
            f"triton={ours[first].item()!r} torch={reference[first].item()!r}"
        )


# ------------------------------------------------------------------------------ min / max


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,channel_dim", LAYOUTS)
@pytest.mark.parametrize("split", [1, 3])
def test_channel_min_max_equals_torch(target, shape, channel_dim, dtype, split):
    x = target.put(torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype))
    dim = channel_dim % x.ndim
    mn, mx = target.kernels.channel_min_max(x, dim, split=split)
    ref_mn, ref_mx = quantize.channel_min_max(x, dim)
    assert mn.dtype == dtype and mn.shape == (shape[0], shape[dim])
    assert torch.equal(mn, ref_mn) and torch.equal(mx, ref_mx)


def test_channel_min_max_of_non_contiguous_input(target):
    x = target.put(torch.randn(4, 10, 3, generator=torch.Generator().manual_seed(2))).transpose(
        1, 2
    )
    mn, mx = target.kernels.channel_min_max(x, 1, split=2)
    assert torch.equal(mn, x.amin(dim=2)) and torch.equal(mx, x.amax(dim=2))


@pytest.mark.parametrize("split", [1, 4])
def test_nan_reaches_only_its_channel(target, split):
    x = torch.randn(2, 3, 20, 30, generator=torch.Generator().manual_seed(3))
    x[1, 2, 17, 5] = float("nan")
    mn, mx = target.kernels.channel_min_max(target.put(x), 1, split=split)
    assert math.isnan(mn[1, 2].item()) and math.isnan(mx[1, 2].item())
    finite = torch.ones(2, 3, dtype=torch.bool, device=target.device)
    finite[1, 2] = False
    assert torch.isfinite(mn[finite]).all() and torch.isfinite(mx[finite]).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_input_raises_through_the_triton_path(target, bad):
    x = torch.randn(2, 3, 8, 8)
    x[0, 1, 3, 3] = bad
    with pytest.raises(ValueError, match=r"NaN or Inf in sample 0, channel 1"):
        randomized_quantize(target.put(x), 8, backend="triton")


# -------------------------------------------------------------------- binning + collapsing


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,channel_dim", LAYOUTS)
@pytest.mark.parametrize("num_bins", [1, 5, 30])
def test_quantize_equals_torch_bit_for_bit(target, shape, channel_dim, dtype, num_bins):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(num_bins)).to(dtype)
    x = target.put(x)
    params = _params(x, channel_dim, num_bins, seed=7, p=0.6)
    ours, reference = _both(x, params, channel_dim=channel_dim)
    _assert_identical(ours, reference)
    # The comparison is not vacuous: where a channel has several values and its sample was
    # drawn for quantization, the quantizer changed the data.
    if x[0].numel() > x.shape[channel_dim % x.ndim] and bool(params.apply.any()):
        assert not torch.equal(ours, x)


@pytest.mark.parametrize("collapse", ["random", "middle"])
@pytest.mark.parametrize("spacing", ["random", "uniform"])
def test_every_spacing_and_collapse(target, collapse, spacing):
    x = target.put(torch.rand(3, 4, 17, 5, generator=torch.Generator().manual_seed(11)))
    params = _params(x, 1, 5, seed=12, collapse=collapse, spacing=spacing)
    _assert_identical(*_both(x, params))


def test_values_on_cut_points_go_to_the_upper_bin(target):
    # Uniform cuts of [0, 8] into 8 bins fall exactly on the integers 1..7; bins are
    # [a_i, a_{i+1}), so the integer k must land in bin k whose value lies in [k, k + 1].
    x = target.put(torch.arange(9, dtype=torch.float32).repeat(2, 3, 1))
    params = _params(x, 1, 8, seed=0, spacing="uniform")
    ours, reference = _both(x, params)
    _assert_identical(ours, reference)
    k = torch.arange(8, dtype=torch.float32, device=target.device)
    assert bool(((ours[..., :8] >= k) & (ours[..., :8] <= k + 1)).all())


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_p_gate_passes_samples_through_unchanged(target, p):
    x = target.put(torch.randn(8, 2, 30, generator=torch.Generator().manual_seed(5)))
    params = _params(x, 1, 4, seed=6, p=p)
    ours, reference = _both(x, params)
    _assert_identical(ours, reference)
    for s in range(8):
        assert torch.equal(ours[s], x[s]) == (not bool(params.apply[s]))


def test_constant_channel_passes_through(target):
    x = torch.randn(2, 3, 20, generator=torch.Generator().manual_seed(8))
    x[1, 0] = 0.25
    x = target.put(x)
    ours, reference = _both(x, _params(x, 1, 8, seed=9))
    _assert_identical(ours, reference)
    assert torch.equal(ours[1, 0], x[1, 0])


def test_non_contiguous_input(target):
    base = target.put(torch.randn(4, 20, 3, generator=torch.Generator().manual_seed(10)))
    x = base.transpose(1, 2)  # (4, 3, 20) with channel stride 1
    assert not x.is_contiguous()
    _assert_identical(*_both(x, _params(x, 1, 6, seed=11)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("segment_dtype", [torch.int64, torch.int32], ids=str)
def test_packed_segments_equal_torch(target, dtype, segment_dtype):
    g = torch.Generator().manual_seed(12)
    x = torch.randn(500, 3, generator=g).to(dtype)
    # Unsorted ids with an empty segment (3) in the middle.
    segment_ids = torch.randint(0, 6, (500,), generator=g)
    segment_ids[segment_ids == 3] = 4
    x, segment_ids = target.put(x), target.put(segment_ids.to(segment_dtype))
    params = _params(x, 1, 30, seed=13, p=0.7, num_samples=6)
    ours, reference = _both(x, params, channel_dim=-1, segment_ids=segment_ids)
    _assert_identical(ours, reference)
    assert not torch.equal(ours, x)


@pytest.mark.parametrize("num_bins", [8, 30])
def test_sorted_packed_segments_equal_torch(target, num_bins):
    """Packed order: sorted batches with big segments take the torch path's slice-by-segment
    branch (rq_core.quantize._quantize_sorted_segments), unsorted ones its gather branch; the
    kernel must equal both, and a gated sample and an empty segment must pass through."""
    g = torch.Generator().manual_seed(20)
    sizes = torch.tensor([700, 0, 300, 1200])
    x = target.put(torch.randn(int(sizes.sum()), 3, generator=g))
    segment_ids = target.put(torch.repeat_interleave(torch.arange(4), sizes))
    params = _params(x, 1, num_bins, seed=21, p=0.7, num_samples=4)
    params = QuantizationParams(
        params.cut_fractions,
        params.value_fractions,
        target.put(torch.tensor([True, True, False, True])),
    )
    ours, reference = _both(x, params, channel_dim=-1, segment_ids=segment_ids)
    _assert_identical(ours, reference)
    flipped, flipped_reference = _both(
        x.flip(0), params, channel_dim=-1, segment_ids=segment_ids.flip(0)
    )
    _assert_identical(flipped, flipped_reference)
    _assert_identical(flipped.flip(0), ours)
    assert torch.equal(ours[segment_ids == 2], x[segment_ids == 2])


def test_gradients_match_torch_path(target):
    x = target.put(torch.randn(4, 3, 10, generator=torch.Generator().manual_seed(14)))
    params = _params(x, 1, 8, seed=15, p=0.5)
    weight = torch.arange(10.0, device=target.device)
    for straight_through in (False, True):
        grads = []
        for backend in ("triton", "torch"):
            leaf = x.clone().requires_grad_(True)
            y = apply_randomized_quantization(
                leaf, params, straight_through=straight_through, backend=backend
            )
            (y * weight).sum().backward()
            grads.append(leaf.grad)
        assert torch.equal(grads[0], grads[1])


def test_replay_gives_the_same_output(target):
    x = target.put(torch.randn(3, 4, 25, generator=torch.Generator().manual_seed(16)))
    params = _params(x, 1, 8, seed=17)
    first = apply_randomized_quantization(x, params, backend="triton")
    second = apply_randomized_quantization(x, params, backend="triton")
    assert torch.equal(first, second)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_generator_draws_equal_torch(target, p):
    """randomized_quantize draws its parameters from a generator on x's device: the same
    seed gives the same output through the kernel and the torch path, another seed differs."""
    x = target.put(torch.randn(6, 3, 40, generator=torch.Generator().manual_seed(18)))

    def run(backend: str, seed: int) -> torch.Tensor:
        g = torch.Generator(device=target.device).manual_seed(seed)
        return randomized_quantize(x, 8, p=p, generator=g, backend=backend)

    ours = run("triton", 19)
    _assert_identical(ours, run("torch", 19))
    assert torch.equal(ours, run("triton", 19))
    assert not torch.equal(ours, run("triton", 20))


@pytest.mark.parametrize("where", TARGETS)
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    data=st.data(),
    num_bins=st.integers(1, 40),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_property_any_layout_equals_torch(where, sizes, data, num_bins, dtype, seed):
    # Not the `target` fixture: Hypothesis runs many examples per function-scoped fixture.
    with _built_for(where) as target:
        channel_dim = data.draw(st.integers(1, len(sizes) - 1))
        g = torch.Generator().manual_seed(seed)
        x = target.put((torch.randn(sizes, generator=g) * 10).to(dtype))
        params = sample_quantization_params(
            sizes[0],
            sizes[channel_dim],
            num_bins,
            p=0.8,
            dtype=quantize._compute_dtype(dtype),
            generator=g,
        ).to(target.device)
        ours, reference = _both(x, params, channel_dim=channel_dim)
        _assert_identical(ours, reference)
        mn, mx = target.kernels.channel_min_max(x, channel_dim, split=2)
        ref_mn, ref_mx = quantize.channel_min_max(x, channel_dim)
        assert torch.equal(mn, ref_mn) and torch.equal(mx, ref_mx)


# ---------------------------------------------------------------------------- arguments


def test_bad_tables_are_rejected(target):
    x = target.put(torch.randn(2, 3, 4))
    cuts = target.put(torch.zeros(6, 3))
    with pytest.raises(TypeError, match="float32/float64"):
        target.kernels.bucketize_collapse(
            x, 1, cuts.half(), target.put(torch.zeros(6, 4)).half(), None
        )
    with pytest.raises(ValueError, match=r"cuts must have shape \(6, 3\)"):
        target.kernels.bucketize_collapse(
            x, 1, target.put(torch.zeros(6, 2)), target.put(torch.zeros(6, 4)), None
        )


def test_cpu_tensor_without_interpreter_gets_a_clear_error():
    module = _reload(interpret=False)
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="needs CUDA tensors.*backend='torch'"):
        module.channel_min_max(x, 1)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        randomized_quantize(x, 4, backend="triton")
    assert not module.kernels_available(x)


def test_auto_backend_uses_torch_on_cpu(monkeypatch):
    module = _reload(interpret=False)

    def forbidden(*args, **kwargs):
        raise AssertionError("the Triton kernel ran on a CPU tensor under backend='auto'")

    monkeypatch.setattr(module, "bucketize_collapse", forbidden)
    y = randomized_quantize(torch.randn(2, 3, 8), 4, generator=torch.Generator().manual_seed(0))
    assert y.shape == (2, 3, 8)


# ------------------------------------------------------------- limits (issue 13)

# One channel per dtype whose max - min overflows the dtype (float16: binned in float32, which
# holds its range; the control).
OVERFLOWING = {
    torch.float32: [-2e38, 2e38, 0.0, 1.0],
    torch.float64: [-1e308, 1e308, 0.0, 1.0],
    torch.bfloat16: [-3e38, 3e38, 0.0, 1.0],
    torch.float16: [-65504.0, 65504.0, 0.0, 1.0],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("num_bins", [2, 8, 40])
def test_overflowing_range_equals_torch_and_spreads(target, dtype, num_bins):
    """Before the fix both paths agreed on garbage: every value came back as the max."""
    v = target.put(torch.tensor(OVERFLOWING[dtype], dtype=dtype))
    x = torch.stack([v, v.flip(0), v / 4]).unsqueeze(0)  # (1, 3, 4)
    params = _params(x, 1, num_bins, seed=21)
    ours, reference = _both(x, params)
    _assert_identical(ours, reference)
    lo, hi = v.min(), v.max()
    assert bool(torch.isfinite(ours).all() and ((ours >= lo) & (ours <= hi)).all())
    assert ours[0, 0].unique().numel() > 1 and ours[0, 1].unique().numel() > 1


def test_the_largest_num_bins_equals_torch(target):
    x = target.put(torch.randn(2, 3, 50, generator=torch.Generator().manual_seed(22)))
    params = _params(x, 1, quantize.MAX_NUM_BINS, seed=23)
    _assert_identical(*_both(x, params))


@pytest.mark.parametrize("huge", [10**9, 2**62])
def test_sparse_segment_ids_equal_torch(target, huge):
    g = torch.Generator().manual_seed(24)
    x = torch.randn(40, 3, generator=g)
    ids = torch.tensor([huge, 5, 0, huge])[torch.randint(0, 4, (40,), generator=g)]
    x, ids = target.put(x), target.put(ids)
    distinct = int(ids.unique().numel())
    params = _params(x, 1, 8, seed=25, num_samples=distinct)  # a row per present segment
    ours, reference = _both(x, params, channel_dim=-1, segment_ids=ids)
    _assert_identical(ours, reference)
    renumbered = torch.unique(ids, return_inverse=True)[1]
    _assert_identical(
        ours,
        apply_randomized_quantization(
            x, params, channel_dim=-1, segment_ids=renumbered, backend="triton"
        ),
    )


# ------------------------------------------------------------- compiled build (no GPU)


def _compile_for_sm90(kernel, signature: dict[str, str], constants: dict, num_warps: int):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    for name in constants:
        signature[name] = "constexpr"
    source = ASTSource(kernel, signature, constants)
    return triton.compile(
        source, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps}
    )


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp64"])
def test_kernels_compile_for_a_cuda_target(dtype):
    """The interpreter accepts code the compiler rejects; compile the real thing for sm_90."""
    module = _reload(interpret=False)
    table = "fp64" if dtype == "fp64" else "fp32"
    min_max_signature = {
        "x_ptr": f"*{dtype}", "min_ptr": f"*{dtype}", "max_ptr": f"*{dtype}",
        "A": "i32", "C": "i32", "B": "i32", "CB": "i64", "sample_numel": "i64",
        "num_a_blocks": "i32", "num_b_blocks": "i32", "split": "i32",
    }  # fmt: skip
    for blocks in ({"BLOCK_A": 1, "BLOCK_C": 1, "BLOCK_B": 2048},
                   {"BLOCK_A": 8, "BLOCK_C": 256, "BLOCK_B": 1}):  # fmt: skip
        compiled = _compile_for_sm90(
            module._channel_min_max_kernel,
            dict(min_max_signature),
            {**blocks, "ACC_F64": dtype == "fp64"},
            num_warps=8,
        )
        assert ".entry" in compiled.asm["ptx"]
    bucketize_signature = {
        "x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "cuts_ptr": f"*{table}",
        "values_ptr": f"*{table}", "gate_ptr": "*u8", "segment_ptr": "*i64",
        "num_rows": "i32", "C": "i32", "B": "i32", "rows_per_sample": "i32",
        "num_b_blocks": "i32",
    }  # fmt: skip
    # 7 cuts, and the most a quantizer may have (quantize.MAX_NUM_BINS - 1 = 2**16 - 1).
    for segments, wide, num_cuts in [(False, False, 7), (False, True, 7), (True, False, 7),
                                     (True, True, 7), (False, False, 2**16 - 1)]:  # fmt: skip
        compiled = _compile_for_sm90(
            module._bucketize_collapse_kernel, dict(bucketize_signature),
            {"NUM_CUTS": num_cuts, "SEARCH_STEPS": num_cuts.bit_length(), "HAS_GATE": True,
             "HAS_SEGMENTS": segments, "WIDE_INDEX": wide, "ROWS": 1024 if segments else 1,
             "BLOCK_B": 1 if segments else 1024},
            num_warps=4,
        )  # fmt: skip
        assert ".entry" in compiled.asm["ptx"]


# ------------------------------------------------------------------------------ on a GPU


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "shape,channel_dim", [((64, 3, 224, 224), 1), ((256, 1, 64, 96), 1), ((64, 196, 256), -1)]
)
def test_cuda_auto_backend_runs_the_kernel_and_equals_torch(monkeypatch, shape, channel_dim, dtype):
    module = _reload(interpret=False)
    calls = []
    real = module.bucketize_collapse

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "bucketize_collapse", counting)
    x = torch.randn(shape, device="cuda", dtype=dtype)
    g = torch.Generator(device="cuda").manual_seed(0)
    params = sample_quantization_params(
        shape[0],
        shape[channel_dim],
        8,
        p=0.5,
        device="cuda",
        dtype=quantize._compute_dtype(dtype),
        generator=g,
    )
    ours = apply_randomized_quantization(x, params, channel_dim=channel_dim)
    assert calls, "backend='auto' did not use the Triton kernel on CUDA"
    reference = apply_randomized_quantization(x, params, channel_dim=channel_dim, backend="torch")
    _assert_identical(ours, reference)


@pytest.mark.gpu
@needs_cuda
def test_cuda_packed_points(monkeypatch):
    _reload(interpret=False)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(32 * 10_000, 3, device="cuda", generator=g)
    segment_ids = torch.arange(32, device="cuda").repeat_interleave(10_000)
    params = sample_quantization_params(32, 3, 30, device="cuda", generator=g)
    ours, reference = _both(x, params, channel_dim=-1, segment_ids=segment_ids)
    _assert_identical(ours, reference)
