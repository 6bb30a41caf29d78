"""OUTDIR/summary.md of a GPU acceptance run, from the steps' ``results/<step>.json``."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

# A GPU that the loader feeds at less than this fraction of its step rate is called starved;
# above 1 / this, the loader has room to spare (in between: about even).
STARVE_BELOW = 0.9
STEP_ORDER = [
    "install",
    "tests",
    "demo-byol-a",
    "demo-mid-net",
    "demo-dabs",
    "quantize",
    "paper-byol-a",
    "paper-mid-net",
    "paper-dabs",
    "pipeline-byol-a",
    "pipeline-mid-net",
    "pipeline-dabs",
]
LOG_TAIL_LINES = 40


def load_result(outdir: Path, name: str) -> dict | None:
    path = outdir / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value / 2**20:,.0f} MiB"


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:,.2f}"


def _machine() -> list[str]:
    lines = [
        f"- CPU: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}"
    ]
    try:
        import torch

        line = f"- torch {torch.__version__}"
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            line += (
                f"; GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
                f"CUDA {torch.version.cuda}"
            )
        else:
            line += "; no CUDA device"
        try:
            import triton

            line += f"; triton {triton.__version__}"
        except ImportError:
            line += "; no triton"
        lines.append(line)
    except ImportError:
        lines.append("- torch is not importable")
    return lines


def _log_tail(outdir: Path, result: dict) -> str:
    path = outdir / result.get("log", "")
    if not path.is_file():
        return "(no log)"
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _tests(r: dict) -> list[str]:
    d = r.get("data") or {}
    if not d:
        return []
    out = [
        f"`{d.get('command', 'pytest -m gpu')}`",
        "",
        f"{d.get('tests', 0)} gpu tests: "
        f"{d.get('tests', 0) - d.get('failed', 0) - d.get('errors', 0) - d.get('skipped', 0)} "
        f"passed, {d.get('failed', 0)} failed, {d.get('errors', 0)} errors, "
        f"{d.get('skipped', 0)} skipped.",
    ]
    for reason, count in (d.get("skip_reasons") or {}).items():
        out.append(f"- skipped {count}: {reason}")
    for failure in (d.get("failures") or [])[:30]:
        out.append(f"- FAILED {failure}")
    return out


def _quantize(r: dict) -> list[str]:
    d = r.get("data") or {}
    rows = d.get("rows") or []
    if not rows:
        return []
    out = [
        f"`{d.get('command', '')}` (size: {d.get('size')}, median of {d.get('repeats')} calls)",
        "",
        f"{d.get('setup', '')}",
        "",
        "| shape | ours | ours ms | dense ms | copy ms | speed-up | ours GB/s | fraction of copy | "
        "peak extra memory ours / dense |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        out.append(
            f"| {row['case']} | {row.get('ours_impl', '')} | {_ms(row['ours_s'])} | "
            f"{_ms(row['dense_s'])} | {_ms(row.get('copy_s'))} | {row['speedup']:.1f}x | "
            f"{row.get('ours_gb_per_s', 0):.1f} | {row.get('bandwidth_vs_copy', 0):.2f} | "
            f"{row['ours_mem_x_input']:.2f}x / {row['dense_mem_x_input']:.2f}x |"
        )
    out += [
        "",
        "Bandwidth model: ours moves 3x the input's bytes (min/max read, then read + write), "
        "a copy 2x.",
    ]
    return out


def _demo(r: dict, dry_run: bool) -> list[str]:
    d = r.get("data") or {}
    if not d:
        return []
    evidence = (
        f"{d.get('trainers_on_gpu', 0)} of {d.get('trainers', 0)} Lightning trainers on the GPU, "
        f"peak GPU memory {_mib(d.get('cuda_peak_bytes'))}"
    )
    out = [
        f"`{d.get('command', '')}`",
        "",
        f"CUDA: {evidence}" + (" (dry run: CPU)" if dry_run else ""),
    ]
    if d.get("results_md"):
        out += ["", d["results_md"].strip()]
    return out


def _paper(r: dict) -> list[str]:
    rows = (r.get("data") or {}).get("rows") or []
    if not rows:
        return []
    out = [
        "| variant | batch | precision | step ms (median, min-max) | samples/s | peak GPU memory | "
        "full schedule | projected GPU-hours (1 GPU) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        out.append(
            f"| {row['variant']} | {row['batch_size']} | {row['precision']} | "
            f"{_ms(row['step_s_median'])} "
            f"({_ms(row['step_s_min'])}-{_ms(row['step_s_max'])}) | {row['samples_per_s']:,.1f} | "
            f"{_mib(row.get('peak_gpu_bytes'))} | {row['schedule']} | "
            f"{row['projected_gpu_hours']:,.1f} |"
        )
    rq = [row for row in rows if row["rq"]]
    base = [row for row in rows if not row["rq"]]
    if rq and base:
        out += [
            "",
            "Step time with RQ / baseline: "
            f"{rq[0]['step_s_median'] / base[0]['step_s_median']:.2f}",
        ]
    return out


def starvation(loader_rate: float, gpu_rate: float) -> str:
    """One sentence: does a loader delivering ``loader_rate`` samples/s keep up with a GPU
    that consumes ``gpu_rate``?"""
    ratio = loader_rate / gpu_rate
    if ratio < STARVE_BELOW:
        return (
            f"the GPU starves: the loader delivers {ratio:.0%} of what the GPU consumes, "
            f"so the GPU waits about {1 - ratio:.0%} of the time "
            "(add workers/CPUs or cache decoded data)"
        )
    if ratio > 1 / STARVE_BELOW:
        return f"the GPU is the bottleneck: the loader could feed {ratio:.1f}x the GPU's rate"
    return f"about even: the loader delivers {ratio:.0%} of the GPU's rate"


def _pipelines(results: dict[str, dict]) -> list[str]:
    out = [
        "| app | loader (config's batch, workers) on this machine's CPUs | loader samples/s | "
        "GPU samples/s (paper model + RQ) | verdict |",
        "|---|---|---|---|---|",
    ]
    any_row = False
    for app in ("byol-a", "mid-net", "dabs"):
        pipe = (results.get(f"pipeline-{app}") or {}).get("data") or {}
        paper = ((results.get(f"paper-{app}") or {}).get("data") or {}).get("rows") or []
        if not pipe:
            continue
        any_row = True
        gpu = next((row["samples_per_s"] for row in paper if row["rq"]), None)
        verdict = (
            starvation(pipe["samples_per_s"], gpu)
            if gpu
            else "no GPU step rate (paper step failed)"
        )
        out.append(
            f"| {app} | {pipe['source']}; batch {pipe['batch_size']}, {pipe['workers']} workers, "
            f"{pipe['cpus']} CPUs | {pipe['samples_per_s']:,.1f} | "
            f"{'–' if gpu is None else f'{gpu:,.1f}'} | {verdict} |"
        )
    return out if any_row else []


def render(outdir: Path, *, dry_run: bool, seconds: float) -> str:
    names = STEP_ORDER + sorted(
        p.stem for p in (outdir / "results").glob("*.json") if p.stem not in STEP_ORDER
    )
    results = {name: r for name in names if (r := load_result(outdir, name)) is not None}
    bad = [name for name, r in results.items() if r["status"] != "ok"]
    mode = (
        "DRY RUN on CPU (tiny shapes, two steps a model): checks the script, measures nothing"
        if dry_run
        else "GPU run"
    )
    lines = [
        "# GPU acceptance run",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {mode}; "
        f"steps took {seconds:.0f} s.",
        "",
        *_machine(),
        "",
        "**Result: " + (f"FAILED ({', '.join(bad)})" if bad else "every step passed") + "**",
        "",
        "| step | what | status | seconds | log |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        secs = "–" if r.get("seconds") is None else f"{r['seconds']:.1f}"
        lines.append(
            f"| {name} | {r.get('title', '')} | {r['status']} | {secs} | {r.get('log', '')} |"
        )
    sections = [
        ("Tests on the device", _tests(results.get("tests") or {})),
        (
            "Quantizer: Triton kernel vs the dense reference and a copy",
            _quantize(results.get("quantize") or {}),
        ),
    ]
    for app in ("byol-a", "mid-net", "dabs"):
        sections.append((f"Demo: {app}", _demo(results.get(f"demo-{app}") or {}, dry_run)))
    for app in ("byol-a", "mid-net", "dabs"):
        sections.append(
            (
                f"Paper model: {app} (synthetic in-memory batches)",
                _paper(results.get(f"paper-{app}") or {}),
            )
        )
    sections.append(("Input pipeline against the GPU", _pipelines(results)))
    for title, body in sections:
        if body:
            lines += ["", f"## {title}", "", *body]
    failed = [r for r in results.values() if r["status"] != "ok"]
    if failed:
        lines += ["", "## Failures"]
        for r in failed:
            lines += [
                "",
                f"### {r['name']}: {r['status']}",
                "",
                f"{r.get('error') or ''}",
                "",
                f"Last {LOG_TAIL_LINES} lines of `{r.get('log')}`:",
                "",
                "```",
                _log_tail(outdir, r),
                "```",
            ]
    return "\n".join(lines) + "\n"
