"""Randomized quantization (Wu et al., ICCV 2023, Eq. 2-4) as a pure function.

Every (sample, channel) pair of the input is one independent channel. Its range
[min, max] (taken over all other axes) is cut into ``num_bins`` bins at ``num_bins - 1``
points drawn uniformly in the range (``spacing="random"``) or evenly spaced
(``spacing="uniform"``); bins are ``[a_i, a_{i+1})``, the last one closed at max. Every
value is replaced by its bin's value: a point drawn uniformly inside the bin
(``collapse="random"``) or the bin's midpoint (``collapse="middle"``).

Sampling is separate from applying (kornia style): :func:`sample_quantization_params`
draws a :class:`QuantizationParams` whose numbers are *fractions of each channel's range*,
and :func:`apply_randomized_quantization` turns them into absolute bins for a given input.
Replaying the same params on the same input gives the same output.

Cost: one reduction pass for min/max and one pass that bins and collapses, never the
(C, n, ...) one-hot mask of the reference module; the extra memory is the output. Three
implementations of the binning pass share the bin tables computed here and agree bit for bit:
a compiled C kernel for float32/float64 CPU tensors (``rq_core._native``, built when rq-core is
installed with a C compiler: a select chain over the sorted cuts, vectorised, rows split over
torch's intra-op threads), a fused Triton kernel for CUDA tensors
(:mod:`rq_core._triton_quantize`), and the torch path (chunked broadcast comparisons or a
binary search) everywhere else -- half CPU tensors, torch.compile tracing, a missing build.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "MAX_NUM_BINS",
    "MAX_TABLE_ENTRIES",
    "QuantizationParams",
    "apply_randomized_quantization",
    "randomized_quantize",
    "sample_quantization_params",
]

Collapse = Literal["random", "middle"]
Spacing = Literal["random", "uniform"]
Backend = Literal["auto", "torch", "native", "triton"]

# Elements per block of the torch path: small enough that the several passes of the bin
# search over one block stay in cache, and that the temporaries (bin ids, a float32 copy of
# half inputs) stay a small fraction of the input whatever its size.
_CHUNK_ELEMENTS = 1 << 18
# Up to this many cuts, bins are counted by broadcast comparisons (one pass per cut, fully
# vectorised); beyond it a binary search (searchsorted, O(log n) per element) is cheaper.
_LINEAR_SCAN_MAX_CUTS = 16
# Packed batches whose segments are sorted and hold at least this many rows on average are
# quantized segment by segment (slices, no per-element table gathers).
_MIN_MEAN_SEGMENT = 256
# The compiled CPU kernel (rq_core/_native.c) handles these dtypes; half inputs take the torch path.
_NATIVE_DTYPES = (torch.float32, torch.float64)
# Calls on at least this many elements split their rows over torch.get_num_threads() threads.
_NATIVE_PARALLEL_MIN = 1 << 20
# The select chain of the native kernel serves up to this many cuts (LINEAR_MAX_CUTS in C).
_NATIVE_SELECT_MAX_CUTS = 32

# The most bins one quantizer may have. No kernel breaks above it (the C kernel indexes in
# int64, the Triton one widens past 2**31, the torch path searches), but every call draws and
# keeps S x C x num_bins numbers, so a mistyped num_bins (2**31) took ~23 GB and the OOM
# killer. The paper uses 5-30 bins; 2**16 leaves 2000x of headroom and is as many bins as a
# 16-bit float has bit patterns. docs/decisions.md, "num_bins limit".
MAX_NUM_BINS = 1 << 16
# The most numbers (samples x channels x num_bins) the bin tables of one call may hold: a call
# peaks at ~28 bytes per entry for float32 data (the draws, their sort, the absolute tables),
# ~57 for float64, so 2**26 entries is ~2 GiB (~4 GiB), 500x the largest shape in the
# benchmarks (64 x 256 tokens x 8 bins). Above it, quantize the batch in parts.
MAX_TABLE_ENTRIES = 1 << 26
# Packed batches whose largest segment id reaches this many times the number of rows are
# mostly empty segments (e.g. dataset indices used as ids): their ids are compacted to ranks
# so memory follows the present segments, not the largest id.
_SPARSE_IDS_PER_ROW = 2


@dataclass(frozen=True)
class QuantizationParams:
    """The random draws of one call, relative to each channel's range.

    Attributes:
        cut_fractions: ``(S, C, num_bins - 1)``, sorted along the last axis, in [0, 1]:
            cut point ``k`` of channel ``(s, c)`` sits at ``min + f * (max - min)``.
        value_fractions: ``(S, C, num_bins)`` in [0, 1]: bin ``i`` collapses to
            ``left_i + f * (right_i - left_i)``.
        apply: ``(S,)`` bool, whether sample ``s`` is quantized at all (the ``p`` gate).
    """

    cut_fractions: Tensor
    value_fractions: Tensor
    apply: Tensor

    @property
    def num_bins(self) -> int:
        return self.value_fractions.shape[-1]

    @property
    def num_samples(self) -> int:
        return self.value_fractions.shape[0]

    @property
    def num_channels(self) -> int:
        return self.value_fractions.shape[1]

    def to(self, device: torch.device | str) -> QuantizationParams:
        return QuantizationParams(
            self.cut_fractions.to(device), self.value_fractions.to(device), self.apply.to(device)
        )


# --------------------------------------------------------------------------- validation


def _check_options(num_bins: int, collapse: str, spacing: str, p: float) -> None:
    if isinstance(num_bins, bool) or not isinstance(num_bins, int):
        raise TypeError(f"num_bins must be an int, got {type(num_bins).__name__} ({num_bins!r})")
    if not 1 <= num_bins <= MAX_NUM_BINS:
        raise ValueError(
            f"num_bins must be in [1, {MAX_NUM_BINS}] (rq_core.quantize.MAX_NUM_BINS), "
            f"got {num_bins}"
        )
    if collapse not in ("random", "middle"):
        raise ValueError(f"collapse must be 'random' or 'middle', got {collapse!r}")
    if spacing not in ("random", "uniform"):
        raise ValueError(f"spacing must be 'random' or 'uniform', got {spacing!r}")
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")


def _check_input(x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"x must be a floating-point tensor (float16/bfloat16/float32/float64), got {x.dtype}; "
            "convert it first, e.g. x.float()"
        )
    if x.ndim < 2:
        raise ValueError(
            f"x must have a sample axis (dim 0) and a channel axis, got shape {tuple(x.shape)}"
        )


def _normalize_channel_dim(x: Tensor, channel_dim: int) -> int:
    if isinstance(channel_dim, bool) or not isinstance(channel_dim, int):
        raise TypeError(f"channel_dim must be an int, got {type(channel_dim).__name__}")
    if not -x.ndim <= channel_dim < x.ndim:
        raise ValueError(
            f"channel_dim={channel_dim} is out of range for a {x.ndim}-d input "
            f"of shape {tuple(x.shape)}"
        )
    dim = channel_dim % x.ndim
    if dim == 0:
        raise ValueError(
            "channel_dim=0 is the sample axis; channels must be another axis "
            "(1 for (B, C, ...) inputs, -1 for tokens (B, L, D) and points (N, C))"
        )
    return dim


def _check_table_size(num_samples: int, num_channels: int, num_bins: int) -> None:
    entries = num_samples * num_channels * num_bins
    if entries > MAX_TABLE_ENTRIES:
        raise ValueError(
            f"{num_samples} samples x {num_channels} channels x {num_bins} bins = {entries:,} "
            f"bin-table entries, above the limit of {MAX_TABLE_ENTRIES:,} "
            "(rq_core.quantize.MAX_TABLE_ENTRIES, ~2 GiB of tables per call); "
            "use fewer bins or quantize the batch in parts"
        )


def _check_segment_ids(x: Tensor, segment_ids: Tensor, dim: int) -> int:
    """Validate a packed-batch layout; returns the largest segment id + 1 (0 if no rows)."""
    if not isinstance(segment_ids, Tensor):
        raise TypeError(f"segment_ids must be a torch.Tensor, got {type(segment_ids).__name__}")
    if x.ndim != 2 or dim != 1:
        raise ValueError(
            "segment_ids needs a packed 2-d input (N, C) with channel_dim=-1 (or 1), "
            f"got shape {tuple(x.shape)} with channel_dim={dim}"
        )
    if segment_ids.ndim != 1 or segment_ids.shape[0] != x.shape[0]:
        raise ValueError(
            f"segment_ids must have shape ({x.shape[0]},) to match x of shape {tuple(x.shape)}, "
            f"got {tuple(segment_ids.shape)}"
        )
    if (
        segment_ids.is_floating_point()
        or segment_ids.is_complex()
        or segment_ids.dtype == torch.bool
    ):
        raise TypeError(f"segment_ids must be an integer tensor, got {segment_ids.dtype}")
    if segment_ids.device != x.device:
        raise ValueError(f"segment_ids is on {segment_ids.device} but x is on {x.device}")
    if segment_ids.numel() == 0:
        return 0
    lo, hi = (int(v) for v in torch.aminmax(segment_ids))
    if lo < 0:
        raise ValueError(f"segment_ids must be >= 0, found {lo}")
    return hi + 1


def _ids_are_sparse(num_ids: int, num_rows: int) -> bool:
    """Whether a packed batch's ids are compacted (mostly empty segments; see
    ``_SPARSE_IDS_PER_ROW``). Dense ids, the usual packed batch, keep one row per id."""
    return num_ids > _SPARSE_IDS_PER_ROW * num_rows


def _num_segment_samples(x: Tensor, segment_ids: Tensor, dim: int) -> int:
    """How many samples to draw params for: the largest id + 1, or for sparse ids the number
    of distinct ids (params then go to the present segments in increasing id order)."""
    num_ids = _check_segment_ids(x, segment_ids, dim)
    if _ids_are_sparse(num_ids, segment_ids.shape[0]):
        return int(torch.unique(segment_ids).numel())
    return num_ids


def _compact_segments(
    segment_ids: Tensor, num_ids: int, params: QuantizationParams
) -> tuple[Tensor, QuantizationParams]:
    """Renumber sparse ids to ranks 0..K-1 and take the K matching rows of ``params``.

    ``params`` either has a row per id (row = id, as for dense ids: the rows of the present
    ids are taken, so the output is the one the dense layout gives) or a row per present
    segment in increasing id order (as :func:`randomized_quantize` and the module draw them).
    Everything after this sees K segments, so min/max and tables scale with K, not the id.
    """
    present, ranks = torch.unique(segment_ids, sorted=True, return_inverse=True)
    K = present.numel()
    if params.num_samples >= num_ids:
        rows = present.to(params.apply.device)
    elif params.num_samples >= K:
        rows = slice(0, K)
    else:
        raise ValueError(
            f"params were sampled for {params.num_samples} samples, but segment_ids has {K} "
            f"distinct ids up to {num_ids - 1}: params need a row per id ({num_ids}) or, for "
            f"ids this sparse, a row per distinct id ({K}, in increasing id order)"
        )
    params = QuantizationParams(
        params.cut_fractions[rows], params.value_fractions[rows], params.apply[rows]
    )
    return ranks, params


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Bin edges in float64 for float64 data, else float32 (half inputs are compared in fp32).
    return torch.float64 if dtype == torch.float64 else torch.float32


# ------------------------------------------------------------------------------ sampling


def sample_quantization_params(
    num_samples: int,
    num_channels: int,
    num_bins: int,
    *,
    collapse: Collapse = "random",
    spacing: Spacing = "random",
    p: float = 1.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> QuantizationParams:
    """Draw the parameters of one randomized quantization of ``num_samples`` x ``num_channels``.

    The draw order is fixed (cuts, then bin values, then the ``p`` gate) and all three are
    always drawn, so the same generator state gives the same params whatever ``p`` is.

    >>> g = torch.Generator().manual_seed(0)
    >>> prm = sample_quantization_params(2, 3, 8, generator=g)
    >>> prm.cut_fractions.shape, prm.value_fractions.shape, prm.apply.shape
    (torch.Size([2, 3, 7]), torch.Size([2, 3, 8]), torch.Size([2]))
    """
    _check_options(num_bins, collapse, spacing, p)
    _check_table_size(num_samples, num_channels, num_bins)
    if generator is not None:
        device = generator.device if device is None else torch.device(device)
        if torch.device(device).type != generator.device.type:
            raise ValueError(
                f"generator is on {generator.device} but the draws are for {device}: "
                "pass a torch.Generator created on the input's device"
            )
    shape = (num_samples, num_channels)
    if spacing == "random":
        cuts = torch.rand(*shape, num_bins - 1, device=device, dtype=dtype, generator=generator)
        cuts = cuts.sort(dim=-1).values
    else:
        cuts = torch.arange(1, num_bins, device=device, dtype=dtype) / num_bins
        cuts = cuts.expand(*shape, num_bins - 1)
    if collapse == "random":
        values = torch.rand(*shape, num_bins, device=device, dtype=dtype, generator=generator)
    else:
        values = torch.full((*shape, num_bins), 0.5, device=device, dtype=dtype)
    apply = torch.rand(num_samples, device=device, generator=generator) < p
    return QuantizationParams(cuts, values, apply)


# ------------------------------------------------------------------------------ applying


def _layout(x: Tensor, dim: int) -> tuple[int, int, int, int]:
    """View sizes (S, A, C, B): samples, axes between 0 and the channel, channels, axes after."""
    S, C = x.shape[0], x.shape[dim]
    A = math.prod(x.shape[1:dim])
    B = math.prod(x.shape[dim + 1 :])
    return S, A, C, B


def channel_min_max(x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Per-(sample, channel) min and max of ``x`` over every other axis, each ``(S, C)``."""
    S, A, C, B = _layout(x, dim)
    x4 = x.reshape(S, A, C, B)
    return x4.amin(dim=(1, 3)), x4.amax(dim=(1, 3))


def segment_min_max(
    x: Tensor, segment_ids: Tensor, num_segments: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-(segment, channel) min and max of a packed ``(N, C)`` batch, and the segment sizes.

    Empty segments get min = max = 0 (they own no element, so their bins are never used).
    float32/float64 CPU batches take one pass of the compiled kernel, others one
    ``scatter_reduce`` per channel; both give the same numbers. The outputs have
    ``num_segments`` rows whatever the ids in use; for sparse ids (dataset indices, say),
    renumber them first (``torch.unique(segment_ids, return_inverse=True)[1]``).

    Raises ValueError when an id lies outside ``[0, num_segments)`` (the compiled kernel
    writes at the id's row, so it is never handed one).
    """
    if segment_ids.numel():
        lo, hi = (int(v) for v in torch.aminmax(segment_ids))
        if lo < 0 or hi >= num_segments:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"segment_ids must lie in [0, num_segments={num_segments}), found {bad}"
            )
    return _segment_min_max(x, segment_ids, num_segments)


def _segment_min_max(
    x: Tensor, segment_ids: Tensor, num_segments: int
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`segment_min_max` for ids already checked to lie in [0, num_segments)."""
    if _native_usable(x):
        return _segment_min_max_native(x, segment_ids, num_segments)
    C = x.shape[1]
    index = segment_ids.long()
    big = torch.finfo(x.dtype).max
    # One channel at a time with the (N,) ids as they are: no (N, C) int64 index is built.
    full = torch.full((num_segments,), big, dtype=x.dtype, device=x.device)
    mn = torch.stack([full.scatter_reduce(0, index, x[:, c], "amin") for c in range(C)], 1)
    mx = torch.stack([(-full).scatter_reduce(0, index, x[:, c], "amax") for c in range(C)], 1)
    counts = torch.bincount(index, minlength=num_segments)
    empty = (counts == 0).unsqueeze(1)
    mn = mn.masked_fill(empty, 0)
    mx = mx.masked_fill(empty, 0)
    return mn, mx, counts


def _check_ranges(mn: Tensor, mx: Tensor, what: str) -> bool:
    """Raise ValueError naming the first channel that holds NaN or Inf; return whether some
    channel's ``max - min`` overflows the compute dtype (:func:`bin_tables` then halves it).

    ``max - min`` is finite exactly when neither is NaN/Inf and the range does not overflow,
    so the usual all-finite input costs one subtraction, one reduction and one sync.
    """
    cd = _compute_dtype(mn.dtype)
    if bool(torch.isfinite(mx.to(cd) - mn.to(cd)).all()):
        return False
    bad = ~(torch.isfinite(mn) & torch.isfinite(mx))
    if bool(bad.any()):
        s, c = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"x contains NaN or Inf in {what} {s}, channel {c} "
            f"(min={mn[s, c].item()}, max={mx[s, c].item()}); clean the input before quantizing"
        )
    return True


def bin_tables(
    mn: Tensor, mx: Tensor, params: QuantizationParams, *, overflows: bool | None = None
) -> tuple[Tensor, Tensor]:
    """Absolute bin edges and bin values for every channel, flattened over (S, C).

    Returns ``cuts`` ``(S*C, n-1)`` (sorted, inside [min, max]) and ``values`` ``(S*C, n)``
    (value ``i`` inside bin ``i``), in the compute dtype. Both the torch and the Triton path
    bin against these same tables, which is what makes them agree bit for bit. ``overflows``:
    whether some ``max - min`` overflows the compute dtype, when the caller has checked
    (:func:`_check_ranges`); None finds out here.
    """
    cd = _compute_dtype(mn.dtype)
    lo = mn.to(cd).reshape(-1, 1)
    hi = mx.to(cd).reshape(-1, 1)
    n, rows = params.num_bins, lo.shape[0]
    # A channel whose range is wider than the dtype's largest number (float32 [-2e38, 2e38]:
    # max - min overflows to inf, and 0 * inf is NaN) is worked on halved. Scaling by 0.5 and
    # back by 2 is exact there (both ends are then far from the subnormals), and by 1 it
    # changes nothing, so every other channel gets the very bits of lo + f * (hi - lo). Only
    # inputs that have such a channel pay for the scaling.
    if overflows is None:
        overflows = not bool(torch.isfinite(hi - lo).all())
    scale = torch.where(torch.isinf(hi - lo), 0.5, 1.0).to(cd) if overflows else None
    cuts = _point_between(lo, hi, params.cut_fractions.to(cd).reshape(rows, n - 1), scale)
    left = torch.cat([lo, cuts], dim=1)
    right = torch.cat([cuts, hi], dim=1)
    values = _point_between(left, right, params.value_fractions.to(cd).reshape(rows, n), scale)
    return cuts.contiguous(), values.contiguous()


def _point_between(a: Tensor, b: Tensor, f: Tensor, scale: Tensor | None) -> Tensor:
    """``a + f * (b - a)``, clamped to ``[a, b]``; with ``scale``, computed on ``a * scale,
    b * scale`` and scaled back. Rounding (or the doubling, near the dtype's max) may push it
    a hair out, and the clamp keeps it inside (an overflow to inf lands on b). Monotone in f,
    so sorted fractions give sorted points."""
    # In place where the shapes allow: the tables are the per-entry memory of a call.
    sa = a if scale is None else a * scale
    d = b - a if scale is None else (b * scale).sub_(sa)
    t = d.mul_(f) if d.shape == f.shape else d * f
    t.add_(sa)
    if scale is not None:
        t.div_(scale)
    del sa, d
    return t.clamp_(min=a, max=b)


def _blocks(S: int, A: int, C: int, B: int):
    """Split an (S, A, C, B) view into blocks of about ``_CHUNK_ELEMENTS`` elements.

    Yields ``(s0, s1, a_slice, b_slice)``. Whole samples are grouped while they fit; a sample
    larger than a block is cut along A (or along B when A == 1). Blocks keep every channel, so
    each block binds its cut points by plain broadcasting, and small blocks stay in cache
    across the several passes of the bin search.
    """
    per_sample = A * C * B
    if per_sample <= _CHUNK_ELEMENTS:
        step = _CHUNK_ELEMENTS // per_sample
        for s0 in range(0, S, step):
            yield s0, min(S, s0 + step), slice(None), slice(None)
        return
    for s in range(S):
        if A > 1:
            step = max(1, _CHUNK_ELEMENTS // (C * B))
            for a0 in range(0, A, step):
                yield s, s + 1, slice(a0, a0 + step), slice(None)
        else:
            step = max(1, _CHUNK_ELEMENTS // C)
            for b0 in range(0, B, step):
                yield s, s + 1, slice(None), slice(b0, b0 + step)


def _as_uint8(mask: Tensor) -> Tensor:
    """A bool mask as uint8: a view (no conversion pass) in eager mode; a conversion under
    torch.compile, whose inductor cannot lower a bool->uint8 view (torch 2.11)."""
    if torch.compiler.is_compiling():
        return mask.to(torch.uint8)
    return mask.view(torch.uint8)


def _quantize_block(xs: Tensor, cuts: Tensor, values: Tensor) -> Tensor:
    """Quantize one block ``xs`` (s, a, C, b) with its samples' tables (s, C, n-1), (s, C, n)."""
    s, _, C, _ = xs.shape
    n1, n = cuts.shape[-1], values.shape[-1]
    xc = xs.to(cuts.dtype)
    if n1 <= _LINEAR_SCAN_MAX_CUTS:
        # bin id = number of cuts <= x, counted with one broadcast comparison per cut: a
        # handful of vectorised passes over a cache-sized block beat a per-element search.
        bin_id = torch.zeros(xs.shape, dtype=torch.uint8, device=xs.device)
        above = torch.empty(xs.shape, dtype=torch.bool, device=xs.device)
        for k in range(n1):
            torch.ge(xc, cuts[:, None, :, k, None], out=above)
            bin_id.add_(_as_uint8(above))
        table = values[:, None, :, :].expand(s, xs.shape[1], C, n)
        return torch.gather(table, 3, bin_id.long()).to(xs.dtype)
    rows = xc.permute(0, 2, 1, 3).reshape(s * C, -1).contiguous()
    bin_id = torch.searchsorted(cuts.reshape(s * C, n1), rows, right=True)
    q = torch.gather(values.reshape(s * C, n), 1, bin_id)
    return q.view(s, C, xs.shape[1], xs.shape[3]).permute(0, 2, 1, 3).to(xs.dtype)


def _quantize_regular_torch(
    x: Tensor, dim: int, cuts: Tensor, values: Tensor, apply: Tensor | None
) -> Tensor:
    S, A, C, B = _layout(x, dim)
    x4 = x.reshape(S, A, C, B)
    out = torch.empty((S, A, C, B), dtype=x.dtype, device=x.device)
    cuts3 = cuts.view(S, C, cuts.shape[1])
    values3 = values.view(S, C, values.shape[1])
    for s0, s1, a, b in _blocks(S, A, C, B):
        xs = x4[s0:s1, a, :, b]
        q = _quantize_block(xs, cuts3[s0:s1], values3[s0:s1])
        if apply is not None:
            q = torch.where(apply[s0:s1].view(-1, 1, 1, 1), q, xs)
        out[s0:s1, a, :, b] = q
    return out.view(x.shape)


def _binary_search_gather(xv: Tensor, row: Tensor, cuts: Tensor, values: Tensor) -> Tensor:
    """Bin every element of ``xv`` against table row ``row`` of each element (same shape).

    A vectorised upper-bound search: ceil(log2(n)) gathers of one cut per element.
    """
    n1 = cuts.shape[1]
    flat_cuts = cuts.reshape(-1)
    lo = torch.zeros_like(row)
    hi = torch.full_like(row, n1)
    base = row * n1
    for _ in range(math.ceil(math.log2(n1 + 1))):
        active = lo < hi
        mid = (lo + hi) // 2
        c = flat_cuts[base + mid.clamp(max=n1 - 1)]
        go_right = (c <= xv) & active
        lo = torch.where(go_right, mid + 1, lo)
        hi = torch.where(active & ~go_right, mid, hi)
    return values.reshape(-1)[row * values.shape[1] + lo]


def _quantize_sorted_segments(
    x: Tensor, segment_ids: Tensor, cuts: Tensor, values: Tensor, apply: Tensor | None
) -> Tensor:
    N, C = x.shape
    S = cuts.shape[0] // C
    sizes = torch.bincount(segment_ids.long(), minlength=S).tolist()
    out = torch.empty_like(x)
    cuts3 = cuts.view(S, C, -1)
    values3 = values.view(S, C, -1)
    start = 0
    for s, size in enumerate(sizes):
        if size == 0:
            continue
        xs = x[start : start + size]
        if apply is None or bool(apply[s]):
            for _, _, a, _ in _blocks(1, size, C, 1):
                out[start : start + size][a] = _quantize_block(
                    xs[a].unsqueeze(0).unsqueeze(-1), cuts3[s : s + 1], values3[s : s + 1]
                ).view(-1, C)
        else:
            out[start : start + size] = xs
        start += size
    return out


def _quantize_segments_torch(
    x: Tensor, segment_ids: Tensor, cuts: Tensor, values: Tensor, apply: Tensor | None
) -> Tensor:
    N, C = x.shape
    num_segments = cuts.shape[0] // C
    if N >= _MIN_MEAN_SEGMENT * num_segments and bool((segment_ids[1:] >= segment_ids[:-1]).all()):
        # Sorted, sizeable segments (the usual packed batch): each one is a contiguous slice,
        # quantized like a (1, len, C) sample, so cut points bind by broadcasting, no gathers.
        return _quantize_sorted_segments(x, segment_ids, cuts, values, apply)
    n1, n = cuts.shape[1], values.shape[1]
    out = torch.empty_like(x)
    chan = torch.arange(C, device=x.device)
    cuts_by_k = cuts.t().contiguous()  # (n-1, S*C): one column gather per cut
    step = max(1, _CHUNK_ELEMENTS // max(C, 1))
    for i0 in range(0, N, step):
        i1 = min(N, i0 + step)
        seg = segment_ids[i0:i1].long()
        row = seg.unsqueeze(1) * C + chan  # (m, C): the table row of every element
        xs = x[i0:i1]
        xc = xs.to(cuts.dtype)
        if n1 == 0:
            q = values.reshape(-1)[row]
        elif n1 <= _LINEAR_SCAN_MAX_CUTS:
            bin_id = torch.zeros(xs.shape, dtype=torch.uint8, device=x.device)
            above = torch.empty(xs.shape, dtype=torch.bool, device=x.device)
            for k in range(n1):
                torch.ge(xc, cuts_by_k[k][row], out=above)
                bin_id.add_(_as_uint8(above))
            q = values.reshape(-1)[row * n + bin_id]
        else:
            q = _binary_search_gather(xc, row, cuts, values)
        q = q.to(x.dtype)
        if apply is not None:
            q = torch.where(apply[seg].unsqueeze(1), q, xs)
        out[i0:i1] = q
    return out


# ------------------------------------------------------------------------------ native CPU kernel


@functools.cache
def _native_kernel():
    """The compiled module ``rq_core._native``, or None where it was not built (no C compiler
    when the package was installed): the torch path is then used, with the same results."""
    try:
        from rq_core import _native
    except ImportError:
        return None
    return _native


def _native_usable(x: Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype in _NATIVE_DTYPES
        and not torch.compiler.is_compiling()
        and _native_kernel() is not None
    )


_pool_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool; made anew after a fork (a child inherits no live threads)."""
    global _pool
    with _pool_lock:
        pid = os.getpid()
        if _pool is None or _pool[0] != pid or _pool[1] != workers:
            _pool = (pid, workers, ThreadPoolExecutor(workers, thread_name_prefix="rq_core"))
        return _pool[2]


def _run_rows(fn, rows: int, numel: int, *args) -> None:
    """Call ``fn(*args, r0, r1)`` over rows [0, rows), split over torch's intra-op threads.

    The kernel releases the GIL, so the threads run in parallel; small calls stay on one.
    """
    workers = min(torch.get_num_threads(), rows)
    if workers <= 1 or numel < _NATIVE_PARALLEL_MIN:
        fn(*args, 0, rows)
        return
    bounds = [rows * i // workers for i in range(workers + 1)]
    pool = _thread_pool(workers)
    for f in [pool.submit(fn, *args, bounds[i], bounds[i + 1]) for i in range(workers)]:
        f.result()


def _gate_bytes(gate: Tensor | None) -> Tensor | None:
    return None if gate is None else gate.to(torch.uint8).contiguous()


def _quantize_regular_native(
    x: Tensor, dim: int, cuts: Tensor, values: Tensor, gate: Tensor | None
) -> Tensor:
    """The compiled kernel on a (S, A, C, B) view; bit-identical to _quantize_regular_torch."""
    native = _native_kernel()
    S, A, C, B = _layout(x, dim)
    xc = x.contiguous()
    out = torch.empty(x.shape, dtype=x.dtype)
    n1 = cuts.shape[1]
    g = _gate_bytes(gate)
    gptr = 0 if g is None else g.data_ptr()
    is_double = x.dtype == torch.float64
    if B == 1 and n1 <= _NATIVE_SELECT_MAX_CUTS:
        # Channels last: tables transposed to (S, k, C) so each select runs along the channels.
        ct = cuts.view(S, C, n1).transpose(1, 2).contiguous()
        vt = values.view(S, C, n1 + 1).transpose(1, 2).contiguous()
        args = (
            xc.data_ptr(),
            out.data_ptr(),
            A,
            C,
            ct.data_ptr(),
            vt.data_ptr(),
            n1,
            gptr,
            is_double,
        )
        _run_rows(native.bin_channels_last, S * A, x.numel(), *args)
    else:
        args = (
            xc.data_ptr(),
            out.data_ptr(),
            A,
            C,
            B,
            cuts.data_ptr(),
            values.data_ptr(),
            n1,
            gptr,
            is_double,
        )
        _run_rows(native.bin_regular, S * A, x.numel(), *args)
    return out


def _segment_min_max_native(
    x: Tensor, segment_ids: Tensor, num_segments: int
) -> tuple[Tensor, Tensor, Tensor]:
    N, C = x.shape
    xc = x.contiguous()
    seg = segment_ids.to(torch.int64).contiguous()
    mn = torch.full((num_segments, C), math.inf, dtype=x.dtype)
    mx = torch.full((num_segments, C), -math.inf, dtype=x.dtype)
    counts = torch.zeros(num_segments, dtype=torch.int64)
    _native_kernel().segment_min_max(
        xc.data_ptr(),
        N,
        C,
        seg.data_ptr(),
        mn.data_ptr(),
        mx.data_ptr(),
        counts.data_ptr(),
        x.dtype == torch.float64,
    )
    empty = (counts == 0).unsqueeze(1)
    return mn.masked_fill_(empty, 0), mx.masked_fill_(empty, 0), counts


def _quantize_segments_native(
    x: Tensor, segment_ids: Tensor, cuts: Tensor, values: Tensor, gate: Tensor | None
) -> Tensor:
    """The compiled kernel on a packed (N, C) batch; bit-identical to _quantize_segments_torch."""
    native = _native_kernel()
    N, C = x.shape
    xc = x.contiguous()
    seg = segment_ids.to(torch.int64).contiguous()
    out = torch.empty((N, C), dtype=x.dtype)
    g = _gate_bytes(gate)
    gptr = 0 if g is None else g.data_ptr()
    args = (
        xc.data_ptr(),
        out.data_ptr(),
        C,
        seg.data_ptr(),
        cuts.data_ptr(),
        values.data_ptr(),
        cuts.shape[1],
        gptr,
        x.dtype == torch.float64,
    )
    _run_rows(native.bin_segments, N, x.numel(), *args)
    return out


class _QuantizedGradient(torch.autograd.Function):
    """Returns the quantized tensor; the gradient w.r.t. x is ``grad * scale``.

    scale is 0 for quantized elements (the op is piecewise constant) and 1 for elements that
    passed through unchanged or under ``straight_through`` (the gradient of the identity).
    """

    @staticmethod
    def forward(ctx, x: Tensor, q: Tensor, scale: Tensor | float) -> Tensor:  # noqa: D401
        ctx.scale = scale
        return q

    @staticmethod
    def backward(ctx, grad: Tensor):
        scale = ctx.scale
        if isinstance(scale, float):
            g = grad * scale if scale != 1.0 else grad
        else:
            g = grad * scale.to(grad.dtype)
        return g, None, None


# The Triton path lives in rq_core/_triton_quantize.py and provides exactly:
#   channel_min_max(x, dim) -> (mn, mx), each (S, C) in x.dtype, equal to channel_min_max() here;
#   bucketize_collapse(x, dim, cuts, values, gate, segment_ids=None) -> Tensor of x's shape/dtype,
#       bit-identical to _quantize_regular_torch / _quantize_segments_torch for the same tables
# (cuts (S*C, n-1) sorted, values (S*C, n), both in the compute dtype; gate (S,) bool or None).
# Its tests run on CPU with TRITON_INTERPRET=1 and demand exact agreement with the torch path.
def _triton_usable(x: Tensor) -> bool:
    if not x.is_cuda:
        return False
    try:
        from rq_core import _triton_quantize  # noqa: F401
    except Exception:  # Triton missing or broken: the torch path is always correct
        return False
    return True


def apply_randomized_quantization(
    x: Tensor,
    params: QuantizationParams,
    *,
    channel_dim: int = 1,
    segment_ids: Tensor | None = None,
    straight_through: bool = False,
    backend: Backend = "auto",
) -> Tensor:
    """Quantize ``x`` with already-sampled ``params`` (see :func:`randomized_quantize`).

    ``backend="auto"`` uses the fused Triton kernel for CUDA tensors when Triton imports, the
    compiled CPU kernel (``rq_core._native``) for float32/float64 CPU tensors when it was built,
    and the torch path elsewhere (and while torch.compile traces). ``"torch"``, ``"native"`` and
    ``"triton"`` force one (``"triton"`` on CPU needs ``TRITON_INTERPRET=1``, which is how that
    kernel is tested). All paths bin against the same tables and agree bit for bit.

    With ``segment_ids``, row ``s`` of ``params`` belongs to segment id ``s`` (params for the
    largest id + 1 samples). Sparse ids -- the largest id at least twice the number of rows,
    e.g. dataset indices -- are compacted to ranks first, so memory follows the present
    segments; their params may then hold one row per distinct id, in increasing id order
    (which is how :func:`randomized_quantize` and the module draw them), or one per id.
    """
    _check_input(x)
    dim = _normalize_channel_dim(x, channel_dim)
    if backend not in ("auto", "torch", "native", "triton"):
        raise ValueError(f"backend must be 'auto', 'torch', 'native' or 'triton', got {backend!r}")
    if backend == "native" and not _native_usable(x):
        if _native_kernel() is None:
            raise ValueError(
                "backend='native' but rq_core._native was not built (no C compiler when rq-core "
                "was installed); reinstall with a compiler, or use backend='auto'"
            )
        raise ValueError(
            f"backend='native' needs a float32/float64 CPU tensor, got {x.dtype} on {x.device}"
        )
    sparse = False
    if segment_ids is not None:
        num_ids = _check_segment_ids(x, segment_ids, dim)
        sparse = _ids_are_sparse(num_ids, x.shape[0])
        S = max(num_ids, params.num_samples) if x.shape[0] else num_ids
    else:
        S = x.shape[0]
    C = x.shape[dim]
    if x.numel() == 0:
        return x.clone()
    if params.cut_fractions.device != x.device:
        params = params.to(x.device)
    if sparse:
        segment_ids, params = _compact_segments(segment_ids, num_ids, params)
        S = params.num_samples
    if params.num_samples < S or params.num_channels != C:
        raise ValueError(
            f"params were sampled for {params.num_samples} samples "
            f"x {params.num_channels} channels, "
            f"but x has {S} samples x {C} channels"
        )
    use_triton = backend == "triton" or (backend == "auto" and _triton_usable(x))
    use_native = backend == "native" or (backend == "auto" and not use_triton and _native_usable(x))

    with torch.no_grad():
        xd = x.detach()
        if segment_ids is None:
            if use_triton:
                from rq_core import _triton_quantize

                mn, mx = _triton_quantize.channel_min_max(xd, dim)
            else:
                mn, mx = channel_min_max(xd, dim)
            overflows = _check_ranges(mn, mx, "sample")
        else:
            mn, mx, _ = _segment_min_max(xd, segment_ids, S)
            overflows = _check_ranges(mn, mx, "segment")
        cuts, values = bin_tables(mn, mx, _take_samples(params, S), overflows=overflows)
        apply = params.apply[:S]
        gate = None if bool(apply.all()) else apply
        if use_triton:
            from rq_core import _triton_quantize

            q = _triton_quantize.bucketize_collapse(
                xd, dim, cuts, values, gate, segment_ids=segment_ids
            )
        elif use_native and segment_ids is None:
            q = _quantize_regular_native(xd, dim, cuts, values, gate)
        elif use_native:
            q = _quantize_segments_native(xd, segment_ids, cuts, values, gate)
        elif segment_ids is None:
            q = _quantize_regular_torch(xd, dim, cuts, values, gate)
        else:
            q = _quantize_segments_torch(xd, segment_ids, cuts, values, gate)

    if not (x.requires_grad and torch.is_grad_enabled()):
        return q
    if straight_through:
        scale: Tensor | float = 1.0
    elif gate is None:
        scale = 0.0
    else:
        passed = ~gate
        if segment_ids is None:
            scale = passed.view(-1, *([1] * (x.ndim - 1)))
        else:
            scale = passed[segment_ids.long()].unsqueeze(1)
    return _QuantizedGradient.apply(x, q, scale)


def _take_samples(params: QuantizationParams, S: int) -> QuantizationParams:
    if params.num_samples == S:
        return params
    return QuantizationParams(
        params.cut_fractions[:S], params.value_fractions[:S], params.apply[:S]
    )


def randomized_quantize(
    x: Tensor,
    num_bins: int,
    *,
    channel_dim: int = 1,
    collapse: Collapse = "random",
    spacing: Spacing = "random",
    p: float = 1.0,
    segment_ids: Tensor | None = None,
    straight_through: bool = False,
    generator: torch.Generator | None = None,
    backend: Backend = "auto",
) -> Tensor:
    """Randomized quantization of every (sample, channel) of ``x``.

    Args:
        x: floating tensor; dim 0 is the sample axis. ``(B, C, H, W)`` images and
            ``(B, 1, F, T)`` spectrograms use ``channel_dim=1``; tokens ``(B, L, D)`` and
            packed points ``(N, 3)`` use ``channel_dim=-1``.
        num_bins: number of bins per channel, 1 <= n <= ``MAX_NUM_BINS`` (2**16): every call
            draws and keeps samples x channels x n numbers, so the bound keeps a mistyped n
            from taking all memory (the paper uses 5-30). The tables of one call may hold at
            most ``MAX_TABLE_ENTRIES`` (2**26) numbers; quantize larger batches in parts.
        channel_dim: the channel axis (not 0).
        collapse: ``"random"`` (a uniform draw inside each bin) or ``"middle"``.
        spacing: ``"random"`` (n-1 uniform cuts in [min, max]) or ``"uniform"``.
        p: probability that a sample is quantized at all; others pass through unchanged.
        segment_ids: ``(N,)`` integer segment of every row of a packed ``(N, C)`` batch;
            each segment is one sample (its own min/max and bins). Ids need not be
            contiguous; sparse ids (largest >= 2N) are compacted to ranks, so a huge id costs
            no memory (see :func:`apply_randomized_quantization`).
        straight_through: give the gradient of the identity instead of zero.
        generator: a ``torch.Generator`` on x's device; same state, same output.
        backend: ``"auto"`` (Triton on CUDA, the compiled kernel on CPU), ``"torch"``,
            ``"native"`` or ``"triton"``; see :func:`apply_randomized_quantization`.

    Returns:
        A tensor of x's shape and dtype. Each output value lies in the bin of its input,
        each channel holds at most ``num_bins`` distinct values, and a constant channel is
        returned unchanged. This holds up to the dtype's largest numbers: a channel whose
        ``max - min`` overflows (float32 ``[-2e38, 2e38]``) is binned on its halved range.

    Raises:
        ValueError: ``x`` holds NaN or +-Inf (the message names the sample or segment and the
            channel), or ``num_bins`` / the table size is above its limit.

    >>> x = torch.linspace(0, 1, 12).view(1, 2, 6)
    >>> y = randomized_quantize(x, 3, generator=torch.Generator().manual_seed(0))
    >>> y.shape, bool(y[0, 0].unique().numel() <= 3)
    (torch.Size([1, 2, 6]), True)
    """
    _check_options(num_bins, collapse, spacing, p)
    _check_input(x)
    dim = _normalize_channel_dim(x, channel_dim)
    if segment_ids is not None:
        S = _num_segment_samples(x, segment_ids, dim)
    else:
        S = x.shape[0]
    if x.numel() == 0:
        return x.clone()
    params = sample_quantization_params(
        S,
        x.shape[dim],
        num_bins,
        collapse=collapse,
        spacing=spacing,
        p=p,
        device=x.device,
        dtype=_compute_dtype(x.dtype),
        generator=generator,
    )
    return apply_randomized_quantization(
        x,
        params,
        channel_dim=dim,
        segment_ids=segment_ids,
        straight_through=straight_through,
        backend=backend,
    )
