"""rq_core.randomized_quantize against the dense reference algorithm, side by side.

The competitor ("dense") is the published algorithm as the authors' module computes it:
per channel, a one-hot (C, n, H, W) mask of bin membership, an argmax over it and a gather
of the expanded bin values. Both run in this process on the same inputs at the paper's
shapes; the script prints time ratios and peak extra memory (relative to the input) for each.

    python benchmarks/quantize.py                 # all shapes, CPU (and CUDA if present)
    python benchmarks/quantize.py --shapes audio  # one shape
    python benchmarks/quantize.py --quick         # small shapes, for a smoke run
    python benchmarks/quantize.py --results-dir DIR   # also DIR/results.json + results.md
    python benchmarks/quantize.py --device cuda       # the Triton kernel on a GPU

Every row also times a device-to-device copy of the input (``x.clone()``) and reports our
achieved bandwidth as a fraction of the copy's: ours moves about 3x the input's bytes (one
read for the channel min/max, one read and one write to bin and collapse; packed points add
their segment ids), a copy 2x, so 1.0 means the kernel runs at copy speed.

Peak memory on CPU is the process's resident high-water mark (VmHWM, reset through
/proc/self/clear_refs) above the resident size before the call; the script re-executes
itself with a fixed glibc mmap threshold so freed buffers really leave the process. On
CUDA it is torch.cuda.max_memory_allocated above the allocation before the call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rq_core import randomized_quantize
from rq_core.runs import ResultsTable, write_results

TARGET_SPEEDUP = 20.0  # issue 2: at least 20x the dense algorithm on CPU at every shape
TARGET_MEMORY = 2.0  # issue 2: extra memory at most 2x the input
BACKEND = "auto"  # --backend: which implementation "ours" is (auto: the C kernel on CPU)


def dense_reference(x: torch.Tensor, num_bins: int) -> torch.Tensor:
    """The reference module's algorithm for (B, c, H, W): one-hot masks over all bins."""
    B, c, H, W = x.shape
    C = B * c
    xv = x.reshape(C, H, W)
    mn = xv.reshape(C, -1).min(1)[0]
    mx = xv.reshape(C, -1).max(1)[0]
    cuts = torch.rand(C, num_bins - 1, device=x.device)
    pos = (cuts * (mx - mn).view(C, 1) + mn.view(C, 1)).view(C, -1, 1, 1)
    right_check = torch.cat([pos, mx.view(C, 1, 1, 1) + 1], dim=1).sort(1)[0]
    right = torch.cat([pos, mx.view(C, 1, 1, 1) + 1e-6], dim=1).sort(1)[0]
    left = torch.cat([mn.view(C, 1, 1, 1), pos], dim=1).sort(1)[0]
    inside = (xv.view(C, 1, H, W) < right_check) * (xv.view(C, 1, H, W) >= left)
    region = torch.argmax(inside.int(), dim=1, keepdim=True)
    r = torch.rand(C, num_bins, device=x.device)
    values = left + r.view(C, -1, 1, 1) * (right - left)
    out = torch.gather(values.expand(-1, -1, H, W), 1, region)[:, 0]
    return out.view(B, c, H, W).to(x.dtype)


@dataclass
class Case:
    name: str
    num_bins: int
    make: Callable[[torch.device], tuple[torch.Tensor, torch.Tensor | None]]
    ours: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    dense: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def _points(n_shapes: int, n_points: int):
    def make(device):
        x = torch.rand(n_shapes * n_points, 3, device=device) * 2 - 1
        seg = torch.arange(n_shapes, device=device).repeat_interleave(n_points)
        return x, seg

    def dense(x, seg):
        # The reference module has no packed batches: one call per shape, as (1, 3, N, 1).
        outs = [dense_reference(x[seg == s].t().reshape(1, 3, -1, 1), 30) for s in range(n_shapes)]
        return torch.cat([o.reshape(3, -1).t() for o in outs])

    return make, dense


def cases(quick: bool, tiny: bool = False) -> list[Case]:
    k = 32 if tiny else 8 if quick else 1  # --quick / --tiny divide the batch axis
    pts_make, pts_dense = _points(32 // k, 2_000 if tiny else 10_000)
    return [
        Case(
            "images (64, 3, 224, 224) n=8",
            8,
            lambda d: (torch.rand(64 // k, 3, 224, 224, device=d), None),
            lambda x, _: randomized_quantize(x, 8, backend=BACKEND),
            lambda x, _: dense_reference(x, 8),
        ),
        Case(
            "audio log-mel (256, 1, 64, 96) n=5",
            5,
            lambda d: (torch.randn(256 // k, 1, 64, 96, device=d), None),
            lambda x, _: randomized_quantize(x, 5, backend=BACKEND),
            lambda x, _: dense_reference(x, 5),
        ),
        Case(
            "points 32 x 10,000 x 3 packed n=30",
            30,
            pts_make,
            lambda x, seg: randomized_quantize(
                x, 30, channel_dim=-1, segment_ids=seg, backend=BACKEND
            ),
            pts_dense,
        ),
        Case(
            "DABS tokens (64, 196, 256) n=8, channel_dim=-1",
            8,
            lambda d: (torch.randn(64 // k, 196, 256, device=d), None),
            lambda x, _: randomized_quantize(x, 8, channel_dim=-1, backend=BACKEND),
            # the reference wants channels on dim 1: (B, D, L, 1)
            lambda x, _: (
                dense_reference(x.transpose(1, 2).unsqueeze(-1), 8).squeeze(-1).transpose(1, 2)
            ),
        ),
    ]


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_extra_bytes(fn: Callable[[], torch.Tensor], device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        del out
        return peak
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the resident high-water mark
    before = _rss_kib("VmRSS:")
    out = fn()
    peak = _rss_kib("VmHWM:") - before
    del out
    return peak * 1024


def time_it(fn: Callable[[], torch.Tensor], device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def moved_bytes(x: torch.Tensor, seg: torch.Tensor | None) -> tuple[int, int]:
    """Bytes ours and a copy move: ours reads x twice and writes it once (plus the segment
    ids of a packed batch, read in both passes); a copy reads and writes x once."""
    in_bytes = x.numel() * x.element_size()
    seg_bytes = 0 if seg is None else seg.numel() * seg.element_size()
    return 3 * in_bytes + 2 * seg_bytes, 2 * in_bytes


def implementation(device: torch.device) -> str:
    """What "ours" runs on ``device`` under the chosen --backend."""
    from rq_core import quantize

    if BACKEND == "triton" or (BACKEND == "auto" and device.type == "cuda"):
        interpreted = os.environ.get("TRITON_INTERPRET") == "1" and device.type == "cpu"
        return "Triton kernel" + (" (interpreted)" if interpreted else "")
    if BACKEND == "torch" or device.type != "cpu":
        return "torch path"
    if quantize._native_kernel() is None:
        return "torch path (rq_core._native not built)"
    return "compiled kernel rq_core._native"


def measure(case: Case, device: torch.device, repeats: int) -> dict:
    """One case: both sides' median time and peak extra memory (relative to the input), and
    a copy of the input's time with the bandwidths it implies."""
    torch.manual_seed(0)
    x, seg = case.make(device)
    in_bytes = x.numel() * x.element_size()

    def ours():
        return case.ours(x, seg)

    def dense():
        return case.dense(x, seg)

    mem_ours = peak_extra_bytes(ours, device)
    mem_dense = peak_extra_bytes(dense, device)
    t_ours = time_it(ours, device, repeats)
    t_dense = time_it(dense, device, max(1, repeats // 2))
    t_copy = time_it(x.clone, device, repeats)
    ours_bytes, copy_bytes = moved_bytes(x, seg)
    row = {
        "case": case.name,
        "device": device.type,
        "ours_impl": implementation(device),
        "input_bytes": in_bytes,
        "ours_s": t_ours,
        "dense_s": t_dense,
        "copy_s": t_copy,
        "speedup": t_dense / t_ours,
        "ours_mem_x_input": mem_ours / in_bytes,
        "dense_mem_x_input": mem_dense / in_bytes,
        "ours_gb_per_s": ours_bytes / t_ours / 1e9,
        "copy_gb_per_s": copy_bytes / t_copy / 1e9,
    }
    row["bandwidth_vs_copy"] = row["ours_gb_per_s"] / row["copy_gb_per_s"]
    return row


def run(
    device: torch.device, names: list[str] | None, quick: bool, repeats: int, tiny: bool = False
) -> list[dict]:
    rows = []
    for case in cases(quick, tiny):
        if names and not any(n in case.name for n in names):
            continue
        row = measure(case, device, repeats)  # its tensors are freed when it returns
        rows.append(row)
        times = (
            f"[ours {row['ours_s'] * 1e3:.3f} ms, dense {row['dense_s'] * 1e3:.3f} ms, "
            f"copy {row['copy_s'] * 1e3:.3f} ms; ours {row['ours_gb_per_s']:.1f} GB/s, "
            f"copy {row['copy_gb_per_s']:.1f} GB/s]"
        )
        print(format_row(row), times, flush=True)
    return rows


def format_row(r: dict) -> str:
    s = (
        f"{r['device']:4s} {r['case']:48s} ours/dense time {1 / r['speedup']:.4f} "
        f"(speed-up x{r['speedup']:.1f}) | peak extra memory: "
        f"ours {r['ours_mem_x_input']:.2f}x input, "
        f"dense {r['dense_mem_x_input']:.2f}x input"
    )
    if "bandwidth_vs_copy" in r:
        s += f" | bandwidth {r['bandwidth_vs_copy']:.2f}x of a copy's"
    return s


def results_table(rows: list[dict]) -> ResultsTable:
    """The rows of :func:`run` as one table (what the main job's report shows)."""
    columns = [
        "device",
        "case",
        "ours / dense time",
        "speed-up",
        "ours peak extra memory",
        "dense peak extra memory",
    ]
    # Absolute times are only quoted from a GPU (docs/benchmarks.md): CPU rows show ratios.
    on_gpu = any(r["device"] == "cuda" for r in rows)
    if on_gpu:
        columns += ["ours ms", "dense ms", "copy ms", "ours GB/s", "bandwidth vs a d2d copy"]
    table = ResultsTable("Time and peak extra memory, ours vs the dense reference", columns)
    for r in rows:
        cells = {
            "device": r["device"],
            "case": r["case"],
            "ours / dense time": f"{1 / r['speedup']:.4f}",
            "speed-up": f"x{r['speedup']:.1f}",
            "ours peak extra memory": f"{r['ours_mem_x_input']:.2f}x input",
            "dense peak extra memory": f"{r['dense_mem_x_input']:.2f}x input",
        }
        if on_gpu and r["device"] == "cuda":
            cells["ours ms"] = f"{r['ours_s'] * 1e3:.3f}"
            cells["dense ms"] = f"{r['dense_s'] * 1e3:.3f}"
            cells["copy ms"] = f"{r['copy_s'] * 1e3:.3f}"
            cells["ours GB/s"] = f"{r['ours_gb_per_s']:.0f}"
            cells["bandwidth vs a d2d copy"] = f"{r['bandwidth_vs_copy']:.2f}x"
        table.add(**cells)
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--shapes", nargs="*", help="substrings of case names (images, audio, points, DABS)"
    )
    ap.add_argument("--quick", action="store_true", help="batch axis / 8: a smoke run")
    ap.add_argument("--tiny", action="store_true", help="batch axis / 32, 2,000 points: a dry run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for both sides (default 1: ratios that do not depend on machine load)",
    )
    ap.add_argument(
        "--backend",
        choices=["auto", "torch", "native", "triton"],
        default="auto",
        help="our implementation: auto (Triton on CUDA, the compiled kernel on CPU where built), "
        "torch, native, triton (on CPU only under TRITON_INTERPRET=1)",
    )
    ap.add_argument(
        "--results-dir",
        type=Path,
        help="also write DIR/results.json (setup, rows, the table) and DIR/results.md",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    global BACKEND
    BACKEND = args.backend

    # A fixed mmap threshold makes glibc hand big freed buffers back at once, so the resident
    # high-water mark measures what a call really needs. It must be set before start-up.
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None and sys.platform == "linux":
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"
        os.execv(sys.executable, [sys.executable, *sys.argv])

    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    threads = torch.get_num_threads()
    ours = ", ".join(f"on {d.type}: {implementation(d)}" for d in devices)
    setup = f"torch {torch.__version__}, {threads} CPU threads, ours {ours}"
    if torch.cuda.is_available():
        setup += f", {torch.cuda.get_device_name()}"
    print(setup)
    rows = []
    for d in devices:
        rows += run(d, args.shapes, args.quick, args.repeats, args.tiny)
    cpu_rows = [r for r in rows if r["device"] == "cpu"]
    fails = [
        r["case"]
        for r in cpu_rows
        if r["speedup"] < TARGET_SPEEDUP or r["ours_mem_x_input"] > TARGET_MEMORY
    ]
    targets = f">= {TARGET_SPEEDUP:.0f}x faster, <= {TARGET_MEMORY:.0f}x input extra memory"
    verdict = None
    if cpu_rows:
        verdict = "all CPU targets met" if not fails else f"targets missed: {fails}"
        print(f"targets: {targets} -> {verdict}")
    if args.results_dir is not None:
        table = results_table(rows)
        note = f"{setup}; median of {args.repeats} calls (dense: half as many)."
        table.notes.append(note + (f" CPU targets ({targets}): {verdict}." if verdict else ""))
        size = "tiny" if args.tiny else "quick" if args.quick else "paper"
        data = {
            "setup": setup,
            "quick": args.quick,
            "size": size,
            "repeats": args.repeats,
            "rows": rows,
            "verdict": verdict,
        }
        write_results(args.results_dir, table, data, title="Quantizer benchmark")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
