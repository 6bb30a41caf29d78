"""The main job: build the embedded data, pretrain and evaluate every modality, write a report.

    ./dev demo            # the full demo (about 13 min on an idle 2-core machine)
    ./dev demo --quick    # a ~3 minute smoke version
    ./dev demo --force    # redo every stage instead of reusing finished ones

Stages: the Figure-2-style augmentation picture, the quantizer benchmark, then each app's
`demo` command (audio BYOL-A, points MID-Net, DABS), each of which builds its offline data
(cached under ~/.cache/rq), pretrains with RQ and with the modality's baseline, and
linear-probes them and a random-init encoder. Finished stages are reused on a re-run
(a stage is finished when its results file exists). Everything lands in runs/demo/
(runs/demo-quick/ with --quick): report.md, report.html, stages.json and each stage's files.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

APPS = [
    # (app, console script, modality, baseline, paper-scale command)
    (
        "byol-a",
        "rq-byol-a",
        "audio (BYOL-A)",
        "Mixup",
        [
            "rq-byol-a prepare --config apps/byol-a/configs/audioset_paper.yaml",
            "rq-byol-a pretrain --config apps/byol-a/configs/audioset_paper.yaml",
            "rq-byol-a pretrain --config apps/byol-a/configs/audioset_byola.yaml",
            "rq-byol-a evaluate --config apps/byol-a/configs/audioset_paper.yaml",
        ],
    ),
    (
        "mid-net",
        "rq-mid-net",
        "points (MID-Net)",
        "MID-FC (no RQ)",
        [
            "rq-mid-net prepare --config apps/mid-net/configs/shapenet_paper.yaml",
            "rq-mid-net pretrain --config apps/mid-net/configs/shapenet_paper.yaml",
            "rq-mid-net pretrain --config apps/mid-net/configs/shapenet_midfc.yaml",
            "rq-mid-net classify --config apps/mid-net/configs/shapenet_paper.yaml",
            "rq-mid-net segment --config apps/mid-net/configs/shapenet_paper.yaml",
        ],
    ),
    (
        "dabs",
        "rq-dabs",
        "DABS (token embeddings)",
        "e-Mix",
        [
            "rq-dabs pretrain --domain natural_images --algorithm rq",
            "rq-dabs pretrain --domain natural_images --algorithm emix",
            "rq-dabs transfer --domain natural_images",
        ],
    ),
]

# Stage durations in seconds (quick, full) measured on an idle 2-core VM on 2026-11-25
# (full run 12m37s, quick run 54 s with the data already cached), for the whole-run ETA.
EXPECTED_S = {
    "figure": (5, 5),
    "benchmark": (5, 15),
    "byol-a": (30, 125),
    "mid-net": (30, 245),
    "dabs": (20, 380),
}


@dataclass
class Stage:
    name: str
    title: str
    outputs: list[Path]
    command: list[str]
    status: str = "pending"
    seconds: float = 0.0
    log: Path | None = None
    extra: dict = field(default_factory=dict)


def _venv_bin(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def build_stages(run_dir: Path, quick: bool) -> list[Stage]:
    py = sys.executable
    stages = [
        Stage(
            "figure",
            "Augmentation picture (Figure 2 style)",
            [run_dir / "rq_figure.png"],
            [py, "-m", "rq_core.viz", "--out", str(run_dir / "rq_figure.png")],
        ),
        Stage(
            "benchmark",
            "Quantizer vs the dense reference algorithm",
            [run_dir / "benchmark_quantize.txt"],
            [py, str(ROOT / "benchmarks" / "quantize.py"), "--device", "cpu", "--repeats", "2"]
            + (["--quick"] if quick else []),
        ),
    ]
    for app, script, modality, baseline, _ in APPS:
        exe = _venv_bin(script)
        app_dir = run_dir / app
        cmd = [exe or script, "demo"]
        quick_cfg = ROOT / "apps" / app / "configs" / "demo_quick.yaml"
        if quick and quick_cfg.exists():
            cmd += ["--config", str(quick_cfg)]
        cmd += [f"run_dir={app_dir}"]
        st = Stage(app, f"{modality}: RQ vs {baseline} vs random init", [app_dir / "results.json"], cmd)
        if exe is None:
            st.status = "unavailable"
        stages.append(st)
    return stages


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def run_stages(stages: list[Stage], run_dir: Path, quick: bool, force: bool) -> None:
    col = 0 if quick else 1
    remaining = sum(EXPECTED_S[s.name][col] for s in stages if s.status == "pending")
    t_start = time.time()
    for i, st in enumerate(stages, 1):
        if st.status == "unavailable":
            print(f"[{i}/{len(stages)}] {st.title}: skipped ({st.command[0]} is not installed)")
            continue
        expected = EXPECTED_S[st.name][col]
        if not force and all(p.exists() for p in st.outputs):
            st.status = "reused"
            remaining -= expected
            print(f"[{i}/{len(stages)}] {st.title}: reused ({st.outputs[0].relative_to(run_dir)})")
            continue
        eta = _fmt(remaining)
        print(f"\n[{i}/{len(stages)}] {st.title} -- about {_fmt(expected)}; whole run ETA {eta}", flush=True)
        st.log = run_dir / "logs" / f"{st.name}.log"
        st.log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(st.log, "w") as log:
            proc = subprocess.Popen(
                st.command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                # keep the console readable: stage output indented, progress bars passed through
                sys.stdout.write("    " + line)
                sys.stdout.flush()
            rc = proc.wait()
        st.seconds = time.time() - t0
        remaining -= expected
        if st.name == "benchmark" and rc == 0:
            shutil.copyfile(st.log, st.outputs[0])
        st.status = "done" if rc == 0 and all(p.exists() for p in st.outputs) else f"failed (exit {rc})"
        print(f"[{i}/{len(stages)}] {st.title}: {st.status} in {_fmt(st.seconds)} "
              f"(total {_fmt(time.time() - t_start)})", flush=True)


# ----------------------------------------------------------------------------- report


def _results_table(results_json: Path) -> str:
    """A markdown table from an app's results.md (preferred) or results.json."""
    md = results_json.with_suffix(".md")
    if md.exists():
        return md.read_text().strip()
    data = json.loads(results_json.read_text())
    return "```\n" + json.dumps(data, indent=2)[:4000] + "\n```"


def _plot_curves(run_dir: Path, app: str) -> Path | None:
    """Training loss curves of every metrics.csv under the app's run dir."""
    files = sorted((run_dir / app).rglob("metrics.csv"))
    if not files:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for f in files:
        with open(f) as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            continue
        loss_key = next((k for k in rows[0] if "loss" in k and "val" not in k), None)
        step_key = "step" if "step" in rows[0] else None
        if loss_key is None:
            continue
        pts = [(float(r[step_key]) if step_key else i, float(r[loss_key]))
               for i, r in enumerate(rows) if r.get(loss_key) not in (None, "")]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.plot(xs, ys, label=str(f.parent.relative_to(run_dir / app)))
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"{app}: pretraining curves")
    ax.legend(fontsize=7)
    out = run_dir / f"curves_{app}.png"
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def write_report(stages: list[Stage], run_dir: Path, quick: bool, total_s: float) -> tuple[Path, Path]:
    lines = [
        f"# Randomized quantization suite: demo report{' (quick)' if quick else ''}",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} on {os.cpu_count()} CPU cores; "
        f"total wall time {_fmt(total_s)} (reused stages count 0).",
        "",
        "## Stages",
        "",
        "| stage | status | wall time |",
        "|---|---|---|",
    ]
    for st in stages:
        lines.append(f"| {st.title} | {st.status} | {_fmt(st.seconds) if st.seconds else '-'} |")
    lines += ["", "## Augmentation picture", ""]
    if (run_dir / "rq_figure.png").exists():
        lines.append("![randomized quantization views](rq_figure.png)")
    bench = run_dir / "benchmark_quantize.txt"
    if bench.exists():
        lines += ["", "## Quantizer benchmark (ours / dense reference)", "", "```", bench.read_text().strip(), "```"]
    for app, _, modality, baseline, paper_cmds in APPS:
        res = run_dir / app / "results.json"
        lines += ["", f"## {modality}: RQ vs {baseline} vs random init", ""]
        if res.exists():
            lines.append(_results_table(res))
            curves = _plot_curves(run_dir, app)
            if curves:
                lines += ["", f"![{app} curves]({curves.name})"]
        else:
            lines.append("_not run (see the stages table)_")
        lines += ["", "Paper-scale runs (with the real data prepared by `data_scripts/`):", "", "```bash"]
        lines += paper_cmds + ["```"]
    md_path = run_dir / "report.md"
    md_path.write_text("\n".join(lines) + "\n")
    html_path = run_dir / "report.html"
    html_path.write_text(_markdown_to_html("\n".join(lines)))
    return md_path, html_path


def _markdown_to_html(md: str) -> str:
    """Just enough Markdown for this report: headings, tables, code blocks, images, paragraphs."""
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>RQ demo report</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}"
           "pre{background:#f4f4f4;padding:8px;overflow-x:auto}img{max-width:100%}</style></head><body>"]
    lines = md.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            block = []
            while j < len(lines) and not lines[j].startswith("```"):
                block.append(lines[j])
                j += 1
            out.append("<pre>" + html.escape("\n".join(block)) + "</pre>")
            i = j + 1
            continue
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            out.append("<table>")
            for k, cells in enumerate(rows):
                tag = "th" if k == 0 else "td"
                out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
            out.append("</table>")
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("![") and "](" in line:
            alt = line[2 : line.index("]")]
            src = line[line.index("](") + 2 : -1]
            out.append(f"<p><img src='{html.escape(src)}' alt='{html.escape(alt)}'></p>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
        i += 1
    out.append("</body></html>")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a ~3 minute smoke version")
    ap.add_argument("--force", action="store_true", help="redo finished stages")
    ap.add_argument("--run-dir", type=Path, default=None, help="default runs/demo (runs/demo-quick with --quick)")
    ap.add_argument("--only", nargs="*", help="stage names to run (figure, benchmark, byol-a, mid-net, dabs)")
    args = ap.parse_args(argv)
    run_dir = (args.run_dir or ROOT / "runs" / ("demo-quick" if args.quick else "demo")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = build_stages(run_dir, args.quick)
    if args.only:
        unknown = set(args.only) - {s.name for s in stages}
        if unknown:
            ap.error(f"unknown stage(s) {sorted(unknown)}; choose from {[s.name for s in stages]}")
        stages = [s for s in stages if s.name in args.only]
    t0 = time.time()
    run_stages(stages, run_dir, args.quick, args.force)
    total = time.time() - t0
    (run_dir / "stages.json").write_text(json.dumps(
        [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 1)} for s in stages], indent=2))
    md, page = write_report(stages, run_dir, args.quick, total)
    print(f"\nreport: {md}\n        {page}")
    failed = [s.name for s in stages if s.status.startswith("failed")]
    if failed:
        print(f"failed stages: {failed} (logs in {run_dir / 'logs'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
