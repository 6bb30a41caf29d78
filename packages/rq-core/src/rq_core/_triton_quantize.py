"""The fused Triton kernels behind :func:`rq_core.randomized_quantize` on CUDA.

Two passes over the data, as the algorithm needs them and no more:

1. :func:`channel_min_max` -- one read of ``x`` giving every (sample, channel) min and max.
   Programs own a (sample, channel block) and a share of its elements; each writes one
   partial min/max, and a tiny ``(S, C, split)`` reduction finishes the job (deterministic,
   no float atomics, exact in every dtype).
2. :func:`bucketize_collapse` -- one read and one write of ``x``: every element is binned by
   a binary search (``ceil(log2 n)`` loads from its channel's cut table, which stays in
   cache) and replaced by its bin's value, under the optional per-sample ``p`` gate.

The bin tables (absolute cuts and values) come from :func:`rq_core.quantize.bin_tables`, the
same tables the torch path uses, and the kernel compares in the same compute dtype
(float32, float64 for float64 data) with the same rule as ``torch.searchsorted(...,
right=True)``: the bin id is the number of cuts ``<= x``. That is why both paths agree bit
for bit for the same sampled parameters.

The kernels also run on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1`` set
before this module is imported), which is how the test suite checks them without a GPU.

>>> import torch
>>> from rq_core._triton_quantize import kernels_available
>>> isinstance(kernels_available(torch.zeros(1)), bool)
True
"""

from __future__ import annotations

import contextlib
import functools
import math

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["bucketize_collapse", "channel_min_max", "kernels_available"]

# Elements one program handles per step. 1024-2048 keeps a memory-bound kernel near peak
# bandwidth on A100/H100 without spilling registers.
_MIN_MAX_TILE = 2048
_BUCKETIZE_TILE = 1024
# Enough min/max programs to fill a GPU several times over (H100: 132 SMs).
_MIN_MAX_PROGRAMS_PER_SM = 4


# The kernels use Triton builtins and the jit helpers of this module only, never
# triton.language's own jit functions (tl.min, tl.zeros, ...): those are built interpreted or
# compiled once, when triton is first imported, while this module's kernels follow
# TRITON_INTERPRET when it is imported -- so tests can switch to the interpreter by setting the
# variable and reloading this module, whoever imported triton first.


@triton.jit
def _minimum(a, b):
    return tl.minimum(a, b)


@triton.jit
def _maximum(a, b):
    return tl.maximum(a, b)


@triton.jit
def _channel_min_max_kernel(
    x_ptr,
    min_ptr,
    max_ptr,
    A,
    C,
    B,
    CB,
    sample_numel,
    num_a_blocks,
    num_b_blocks,
    split,
    BLOCK_A: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_B: tl.constexpr,
    ACC_F64: tl.constexpr,
):
    """Partial min/max of ``x`` viewed as (S, A, C, B) over axes A and B.

    Grid ``(S, cdiv(C, BLOCK_C), split)``; program ``(s, cb, k)`` reduces tiles
    ``k, k + split, ...`` of its (sample, channel block) and writes ``(S, C, split)`` partials.
    ``CB = C * B`` and ``sample_numel = A * C * B`` come from the host, so Triton types them
    int64 when they need it.
    """
    s = tl.program_id(0).to(tl.int64)
    c_block = tl.program_id(1)
    k = tl.program_id(2)
    a_in = tl.arange(0, BLOCK_A)
    c = c_block * BLOCK_C + tl.arange(0, BLOCK_C)
    b_in = tl.arange(0, BLOCK_B)
    c_ok = c < C
    base = s * sample_numel
    # Accumulate in float32 (float64 for float64 data): widening is exact, so the min/max
    # narrowed back at the end are exactly elements of x.
    if ACC_F64:
        acc_min = tl.full([BLOCK_A, BLOCK_C, BLOCK_B], float("inf"), tl.float64)
    else:
        acc_min = tl.full([BLOCK_A, BLOCK_C, BLOCK_B], float("inf"), tl.float32)
    acc_max = -acc_min
    # NaN is tracked on the side: tl.minimum/tl.min do not promise to propagate it, and the
    # caller must see it to raise its "x contains NaN" error.
    seen_nan = tl.full([BLOCK_A, BLOCK_C, BLOCK_B], 0, tl.int32)
    # A while loop, not range(k, tiles, split): Triton's interpreter cannot use a runtime
    # value as a range bound under NumPy >= 2.3, and the tests run the kernel interpreted.
    num_tiles = num_a_blocks * num_b_blocks
    t = k
    while t < num_tiles:
        a_block = t // num_b_blocks
        a = a_block * BLOCK_A + a_in
        b = (t - a_block * num_b_blocks) * BLOCK_B + b_in
        offsets = (
            base
            + a.to(tl.int64)[:, None, None] * CB
            + (c.to(tl.int64) * B)[None, :, None]
            + b[None, None, :]
        )
        mask = (a < A)[:, None, None] & c_ok[None, :, None] & (b < B)[None, None, :]
        v = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(acc_min.dtype)
        acc_min = tl.minimum(acc_min, tl.where(mask, v, float("inf")))
        acc_max = tl.maximum(acc_max, tl.where(mask, v, float("-inf")))
        seen_nan = tl.maximum(seen_nan, (v != v).to(tl.int32))
        t += split
    mn = tl.reduce(tl.reduce(acc_min, 2, _minimum), 0, _minimum)
    mx = tl.reduce(tl.reduce(acc_max, 2, _maximum), 0, _maximum)
    nan = tl.reduce(tl.reduce(seen_nan, 2, _maximum), 0, _maximum) > 0
    mn = tl.where(nan, float("nan"), mn).to(x_ptr.dtype.element_ty)
    mx = tl.where(nan, float("nan"), mx).to(x_ptr.dtype.element_ty)
    out = (s * C + c) * split + k
    tl.store(min_ptr + out, mn, mask=c_ok)
    tl.store(max_ptr + out, mx, mask=c_ok)


@triton.jit
def _float32_to_bfloat16_nearest_even(v):
    """float32 -> bfloat16 rounding to nearest, ties to even, as torch's ``.to(bfloat16)``.

    Spelled out on the bits because Triton's interpreter truncates instead, and the tests,
    which run interpreted, demand bit-equality with torch. Inputs are finite here.
    """
    bits = v.to(tl.uint32, bitcast=True)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _bucketize_collapse_kernel(
    x_ptr,
    out_ptr,
    cuts_ptr,
    values_ptr,
    gate_ptr,
    segment_ptr,
    num_rows,
    C,
    B,
    rows_per_sample,
    num_b_blocks,
    NUM_CUTS: tl.constexpr,
    SEARCH_STEPS: tl.constexpr,
    HAS_GATE: tl.constexpr,
    HAS_SEGMENTS: tl.constexpr,
    WIDE_INDEX: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_B: tl.constexpr,
):
    """Bin and collapse ``x`` viewed as ``(num_rows, B)``, rows being (sample, a, channel).

    A program owns a ``[ROWS, BLOCK_B]`` tile. Each row has one channel ``c = r % C`` and
    sample ``r // rows_per_sample`` (``rows_per_sample = A * C``), so when the channel is not
    the last axis (ROWS = 1, B large) the table row is a per-program scalar and only the
    binary search touches every element. With segments the input is a packed (N, C) batch
    (B = 1, rows_per_sample = C) and the sample of point ``r // C`` is ``segment_ids[r // C]``.
    """
    pid = tl.program_id(0)
    row_block = pid // num_b_blocks
    b_block = pid - row_block * num_b_blocks
    if WIDE_INDEX:  # more than 2**31 rows or elements: widen before multiplying
        row_block = row_block.to(tl.int64)
    r = row_block * ROWS + tl.arange(0, ROWS)
    b = b_block * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = r < num_rows
    mask = row_ok[:, None] & (b < B)[None, :]
    offsets = r[:, None] * B + b[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    xc = x.to(cuts_ptr.dtype.element_ty)

    sample = r // rows_per_sample
    if HAS_SEGMENTS:
        sample = tl.load(segment_ptr + sample, mask=row_ok, other=0).to(r.dtype)
    table_row = (sample * C + r % C)[:, None]

    # Upper-bound binary search: after the loop `lo` is the number of cuts <= x, exactly
    # torch.searchsorted(cuts, x, right=True). SEARCH_STEPS = bit_length(NUM_CUTS) halvings
    # shrink [lo, hi) to empty; a finished lane keeps mid == lo == hi and does not move.
    lo = tl.full([ROWS, BLOCK_B], 0, r.dtype)
    hi = lo + NUM_CUTS
    cut_row = cuts_ptr + table_row * NUM_CUTS
    for _ in tl.static_range(SEARCH_STEPS):
        active = lo < hi
        mid = (lo + hi) // 2
        cut = tl.load(cut_row + mid, mask=mask & active, other=0.0)
        go_right = active & (cut <= xc)
        lo = tl.where(go_right, mid + 1, lo)
        hi = tl.where(go_right, hi, mid)
    q = tl.load(values_ptr + table_row * (NUM_CUTS + 1) + lo, mask=mask, other=0.0)
    if x_ptr.dtype.element_ty == tl.bfloat16:
        q = _float32_to_bfloat16_nearest_even(q)
    else:
        q = q.to(x_ptr.dtype.element_ty)
    if HAS_GATE:
        quantize_it = tl.load(gate_ptr + sample, mask=row_ok, other=0) != 0
        q = tl.where(quantize_it[:, None], q, x)
    tl.store(out_ptr + offsets, q, mask=mask)


# ------------------------------------------------------------------------------- launchers


def _interpreting() -> bool:
    # The kernels were built as interpreted functions iff TRITON_INTERPRET=1 at import time.
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_bucketize_collapse_kernel, InterpretedFunction)


def kernels_available(x: Tensor) -> bool:
    """Whether the kernels can run on ``x``'s device: CUDA, or any device when interpreted."""
    return x.is_cuda or _interpreting()


def _check_device(*tensors: Tensor) -> None:
    for t in tensors:
        if not kernels_available(t):
            raise ValueError(
                f"the Triton backend needs CUDA tensors, got one on {t.device}; use "
                "backend='torch' there (or set TRITON_INTERPRET=1 before importing rq_core "
                "to run the kernels in Triton's CPU interpreter, as the tests do)"
            )


def _layout(shape: torch.Size, dim: int) -> tuple[int, int, int, int]:
    """View sizes (S, A, C, B): samples, axes between 0 and the channel, channels, axes after."""
    return shape[0], math.prod(shape[1:dim]), shape[dim], math.prod(shape[dim + 1 :])


def _pow2_at_most(n: int, cap: int) -> int:
    return min(triton.next_power_of_2(max(n, 1)), cap)


@functools.cache
def _multiprocessor_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _default_split(x: Tensor, programs_without_split: int) -> int:
    if not x.is_cuda:
        return 1
    sms = _multiprocessor_count(x.device.index if x.device.index is not None else 0)
    return max(1, (_MIN_MAX_PROGRAMS_PER_SM * sms) // max(programs_without_split, 1))


def _on_device_of(x: Tensor):
    # Triton launches on the *current* CUDA device; make that x's device (x may be on cuda:1).
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def channel_min_max(x: Tensor, dim: int, *, split: int | None = None) -> tuple[Tensor, Tensor]:
    """Per-(sample, channel) min and max of ``x`` over every other axis, each ``(S, C)``.

    Same result as :func:`rq_core.quantize.channel_min_max` (min/max are exact), in x's dtype;
    a channel holding NaN reports NaN. ``split`` (programs per sample and channel block)
    defaults to enough to fill the GPU; tests force it to exercise the partial reduction.

    >>> import torch, os
    >>> x = torch.arange(24.0).view(2, 3, 4)
    >>> if x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1":
    ...     mn, mx = channel_min_max(x, 1)
    """
    _check_device(x)
    if not 0 < dim < x.ndim:
        raise ValueError(f"dim must be a channel axis in 1..{x.ndim - 1}, got {dim}")
    x = x.contiguous()
    S, A, C, B = _layout(x.shape, dim)
    if x.numel() == 0:
        raise ValueError(f"channel_min_max needs a non-empty input, got shape {tuple(x.shape)}")
    # The tile leans on the contiguous axis: B when the channel is not last, else C (and A).
    block_b = _pow2_at_most(B, _MIN_MAX_TILE)
    block_c = _pow2_at_most(C, max(1, _MIN_MAX_TILE // block_b))
    block_a = _pow2_at_most(A, max(1, _MIN_MAX_TILE // (block_b * block_c)))
    num_a_blocks = triton.cdiv(A, block_a)
    num_b_blocks = triton.cdiv(B, block_b)
    num_c_blocks = triton.cdiv(C, block_c)
    tiles = num_a_blocks * num_b_blocks
    if split is None:
        split = _default_split(x, S * num_c_blocks)
    split = max(1, min(int(split), tiles))
    partial_min = torch.empty((S, C, split), dtype=x.dtype, device=x.device)
    partial_max = torch.empty_like(partial_min)
    elements = block_a * block_c * block_b
    with _on_device_of(x):
        _channel_min_max_kernel[(S, num_c_blocks, split)](
            x,
            partial_min,
            partial_max,
            A,
            C,
            B,
            C * B,
            A * C * B,
            num_a_blocks,
            num_b_blocks,
            split,
            BLOCK_A=block_a,
            BLOCK_C=block_c,
            BLOCK_B=block_b,
            ACC_F64=x.dtype == torch.float64,
            num_warps=8 if elements >= 2048 else 4,
        )
    if split == 1:
        return partial_min.squeeze(2), partial_max.squeeze(2)
    # amin/amax propagate NaN, so a NaN partial still reaches the caller.
    return partial_min.amin(dim=2), partial_max.amax(dim=2)


def bucketize_collapse(
    x: Tensor,
    dim: int,
    cuts: Tensor,
    values: Tensor,
    gate: Tensor | None,
    *,
    segment_ids: Tensor | None = None,
) -> Tensor:
    """Replace every element of ``x`` by the value of its bin, in one fused pass.

    Args:
        x: the input, any floating dtype; ``(N, C)`` with ``dim=1`` when ``segment_ids``
            is given.
        dim: the channel axis (positive).
        cuts: ``(S*C, n-1)`` sorted cut points per (sample, channel) row, compute dtype.
        values: ``(S*C, n)`` bin values per row, same dtype as ``cuts``.
        gate: ``(S,)`` bool, which samples are quantized (others pass through), or None
            for all of them.
        segment_ids: ``(N,)`` integer sample of every row of a packed batch, or None.

    Returns:
        A contiguous tensor of x's shape and dtype, equal element for element to the torch
        path of :mod:`rq_core.quantize` given the same tables.
    """
    _check_device(x)
    if cuts.dtype != values.dtype or cuts.dtype not in (torch.float32, torch.float64):
        raise TypeError(
            "cuts and values must share a float32/float64 dtype, "
            f"got {cuts.dtype} and {values.dtype}"
        )
    x = x.contiguous()
    S, A, C, B = _layout(x.shape, dim)
    if segment_ids is not None:
        if x.ndim != 2 or dim != 1:
            raise ValueError(
                f"segment_ids needs a packed (N, C) input with dim=1, got {tuple(x.shape)}"
            )
        S, A, B = x.shape[0], 1, 1  # every row is its own "sample" mapped through segment_ids
    num_cuts = values.shape[1] - 1
    rows = values.shape[0]
    if cuts.shape != (rows, num_cuts):
        raise ValueError(f"cuts must have shape {(rows, num_cuts)}, got {tuple(cuts.shape)}")
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    numel = x.numel()
    if numel == 0:
        return out
    cuts = cuts.contiguous()
    values = values.contiguous()
    if gate is not None:
        gate = gate.to(device=x.device, dtype=torch.uint8).contiguous()
    if segment_ids is not None:
        segment_ids = segment_ids.contiguous()
    # The tile leans on the contiguous axis: B when the channel is not last, else the rows.
    num_rows = S * A * C
    block_b = _pow2_at_most(B, _BUCKETIZE_TILE)
    rows_per_program = max(1, _BUCKETIZE_TILE // block_b)
    num_b_blocks = triton.cdiv(B, block_b)
    grid = (triton.cdiv(num_rows, rows_per_program) * num_b_blocks,)
    wide = max(numel, rows * (num_cuts + 1)) + _BUCKETIZE_TILE >= 2**31
    # A stand-in pointer where a feature is off; the kernel never loads it (constexpr branch).
    unused = values
    with _on_device_of(x):
        _bucketize_collapse_kernel[grid](
            x,
            out,
            cuts if num_cuts > 0 else unused,
            values,
            gate if gate is not None else unused,
            segment_ids if segment_ids is not None else unused,
            num_rows,
            C,
            B,
            A * C,
            num_b_blocks,
            NUM_CUTS=num_cuts,
            SEARCH_STEPS=num_cuts.bit_length(),
            HAS_GATE=gate is not None,
            HAS_SEGMENTS=segment_ids is not None,
            WIDE_INDEX=wide,
            ROWS=rows_per_program,
            BLOCK_B=block_b,
            num_warps=4,
        )
    return out
