"""rq_core.randomized_quantize against the dense reference algorithm, side by side.

The competitor ("dense") is the published algorithm as the authors' module computes it:
per channel, a one-hot (C, n, H, W) mask of bin membership, an argmax over it and a gather
of the expanded bin values. Both run in this process on the same inputs at the paper's
shapes; the script prints time ratios and peak extra memory (relative to the input) for each.

    python benchmarks/quantize.py                 # all shapes, CPU (and CUDA if present)
    python benchmarks/quantize.py --shapes audio  # one shape
    python benchmarks/quantize.py --quick         # small shapes, for a smoke run
    python benchmarks/quantize.py --results-dir DIR   # also DIR/results.json + results.md

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


def cases(quick: bool) -> list[Case]:
    k = 8 if quick else 1  # --quick divides the batch axis
    pts_make, pts_dense = _points(32 // k, 10_000)
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
            lambda x, seg: randomized_quantize(x, 30, channel_dim=-1, segment_ids=seg, backend=BACKEND),
            pts_dense,
        ),
        Case(
            "DABS tokens (64, 196, 256) n=8, channel_dim=-1",
            8,
            lambda d: (torch.randn(64 // k, 196, 256, device=d), None),
            lambda x, _: randomized_quantize(x, 8, channel_dim=-1, backend=BACKEND),
            # the reference wants channels on dim 1: (B, D, L, 1)
            lambda x, _: dense_reference(x.transpose(1, 2).unsqueeze(-1), 8).squeeze(-1).transpose(1, 2),
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


def measure(case: Case, device: torch.device, repeats: int) -> dict:
    """One case: both sides' median time and peak extra memory (relative to the input)."""
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
    row = {
        "case": case.name,
        "device": device.type,
        "ours_s": t_ours,
        "dense_s": t_dense,
        "speedup": t_dense / t_ours,
        "ours_mem_x_input": mem_ours / in_bytes,
        "dense_mem_x_input": mem_dense / in_bytes,
    }
    if device.type == "cuda":
        t_copy = time_it(x.clone, device, repeats)
        # ours reads x twice (min/max, then binning) and writes once; a copy reads + writes.
        row["bandwidth_vs_copy"] = (3 * in_bytes / t_ours) / (2 * in_bytes / t_copy)
    return row


def run(device: torch.device, names: list[str] | None, quick: bool, repeats: int) -> list[dict]:
    rows = []
    for case in cases(quick):
        if names and not any(n in case.name for n in names):
            continue
        row = measure(case, device, repeats)  # its tensors are freed when it returns
        rows.append(row)
        times = f"[ours {row['ours_s'] * 1e3:.1f} ms, dense {row['dense_s'] * 1e3:.1f} ms]"
        print(format_row(row), times, flush=True)
    return rows


def format_row(r: dict) -> str:
    s = (
        f"{r['device']:4s} {r['case']:48s} ours/dense time {1 / r['speedup']:.4f} "
        f"(speed-up x{r['speedup']:.1f}) | peak extra memory: ours {r['ours_mem_x_input']:.2f}x input, "
        f"dense {r['dense_mem_x_input']:.2f}x input"
    )
    if "bandwidth_vs_copy" in r:
        s += f" | bandwidth {r['bandwidth_vs_copy']:.2f}x of a d2d copy"
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
    if any("bandwidth_vs_copy" in r for r in rows):
        columns.append("bandwidth vs a d2d copy")
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
        if "bandwidth_vs_copy" in r:
            cells["bandwidth vs a d2d copy"] = f"{r['bandwidth_vs_copy']:.2f}x"
        table.add(**cells)
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="*", help="substrings of case names (images, audio, points, DABS)")
    ap.add_argument("--quick", action="store_true", help="batch axis / 8: a smoke run")
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
        choices=["auto", "torch", "native"],
        default="auto",
        help="our implementation on CPU: auto (the compiled kernel where built), torch, native",
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
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    from rq_core import quantize

    built = quantize._native_kernel() is not None
    cpu_impl = {
        "auto": "compiled kernel rq_core._native" if built else "torch path (rq_core._native not built)",
        "native": "compiled kernel rq_core._native",
        "torch": "torch path",
    }[BACKEND]
    threads = torch.get_num_threads()
    setup = f"torch {torch.__version__}, {threads} CPU threads, ours on CPU: {cpu_impl}"
    if torch.cuda.is_available():
        setup += f", {torch.cuda.get_device_name()}"
    print(setup)
    rows = []
    for d in devices:
        rows += run(d, args.shapes, args.quick, args.repeats)
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
        data = {"setup": setup, "quick": args.quick, "rows": rows, "verdict": verdict}
        write_results(args.results_dir, table, data, title="Quantizer benchmark")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
