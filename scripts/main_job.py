"""The main job: build the embedded data, pretrain and evaluate every modality, write a report.

    ./dev demo            # the full demo (about 20 min on an idle 2-core machine)
    ./dev demo --quick    # a ~3 minute smoke version
    ./dev demo --force    # redo every stage instead of reusing finished ones

Stages: the Figure-2-style augmentation picture, the quantizer benchmark, then each app's
`demo` command (audio BYOL-A, points MID-Net, DABS), each of which builds its offline data
(cached under ~/.cache/rq), pretrains with RQ and with the modality's baseline, and
linear-probes them and a random-init encoder. Finished stages are reused on a re-run
(a stage is finished when its results file exists and its command and demo config are unchanged
since it ran, recorded in logs/<stage>.fingerprint). Everything lands in runs/demo/
(runs/demo-quick/ with --quick): report.md, report.html, stages.json and each stage's files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

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

# Stage durations in seconds (quick, full) measured on an idle 2-core VM on 2026-11-25 with the
# data already cached (quick run 54 s; full run 22m12s with the DABS demo on 1 thread, whose
# default of 2 threads then took 9m42s alone), for the stage bars and the whole-run ETA.
EXPECTED_S = {
    "figure": (5, 5),
    "benchmark": (5, 10),
    "byol-a": (30, 285),  # full: 4m43s after the 2026-11-25 demo.yaml change (250 notes, 5 probe seeds)
    "mid-net": (30, 365),
    "dabs": (20, 582),
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
    inputs: list[Path] = field(default_factory=list)  # files that decide the stage's result

    def fingerprint(self) -> str:
        """The command (minus the interpreter's path) and the content of the input files: a
        finished stage is reused only while this is unchanged (e.g. after editing demo.yaml or
        pulling a new one, the stage runs again; the app itself reuses what still matches)."""
        h = hashlib.sha1(json.dumps(self.command[1:]).encode())
        for path in self.inputs:
            h.update(path.read_bytes() if path.is_file() else b"<missing>")
        return h.hexdigest()

    def stamp(self, run_dir: Path) -> Path:
        return run_dir / "logs" / f"{self.name}.fingerprint"

    def reusable(self, run_dir: Path) -> bool:
        stamp = self.stamp(run_dir)
        return (
            all(p.exists() for p in self.outputs)
            and stamp.is_file()
            and stamp.read_text().strip() == self.fingerprint()
        )


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
            inputs=[ROOT / "benchmarks" / "quantize.py"],
        ),
    ]
    for app, script, modality, baseline, _ in APPS:
        exe = _venv_bin(script)
        app_dir = run_dir / app
        cmd = [exe or script, "demo"]
        quick_cfg = ROOT / "apps" / app / "configs" / "demo_quick.yaml"
        config = ROOT / "apps" / app / "configs" / "demo.yaml"  # what `demo` reads by default
        if quick and quick_cfg.exists():
            config = quick_cfg
            cmd += ["--config", str(quick_cfg)]
        cmd += [f"run_dir={app_dir}"]
        st = Stage(
            app, f"{modality}: RQ vs {baseline} vs random init", [app_dir / "results.json"], cmd,
            inputs=[config],
        )
        if exe is None:
            st.status = "unavailable"
        stages.append(st)
    return stages


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


# A line an app's own progress bar (tqdm / Lightning) wrote: "42%|####  | 50/120 [00:31<...]".
PROGRESS_LINE = re.compile(r"\d+%\||\|\s*\d+/\d+\s*\[|\d+/\d+ \[\d|it/s\]|s/it\]")


def whole_run_eta(expected: float, elapsed: float, rest_expected: float, scale: float) -> float:
    """Seconds left in the whole run: what the current stage still needs (at least a tenth of
    its expected time once it overruns) plus the stages after it, each scaled by how this
    machine compares with the measured times so far (actual / expected of finished stages)."""
    current = max(expected - elapsed, 0.1 * expected)
    return (current + rest_expected) * scale


class StageBar:
    """The progress of one stage: a bar of its elapsed time against the time it took on the
    reference machine, labelled with the app's latest progress line, and the whole-run ETA.

    App output goes to the stage log in full; on the console its ordinary lines are printed
    (indented) and its own progress-bar updates only relabel this bar. Without a terminal there
    is no bar: a status line is printed every ``heartbeat`` seconds instead.
    """

    def __init__(
        self,
        label: str,
        expected: float,
        rest_expected: float,
        scale: float,
        tty: bool | None = None,
        heartbeat: float = 30.0,
    ):
        self.label, self.expected, self.rest, self.scale = label, expected, rest_expected, scale
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.heartbeat = heartbeat
        self.status = ""
        self.t0 = time.time()
        self._last_beat = self.t0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.bar = None
        if self.tty:
            self.bar = tqdm(
                total=round(expected),
                desc=label,
                unit="s",
                file=sys.stdout,
                bar_format="{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/~{total_fmt} s{postfix}",
                dynamic_ncols=True,
            )
        self._ticker = threading.Thread(target=self._tick_loop, daemon=True)
        self._ticker.start()

    def eta(self) -> float:
        return whole_run_eta(self.expected, time.time() - self.t0, self.rest, self.scale)

    def line(self, text: str) -> None:
        text = text.rstrip("\n")
        if PROGRESS_LINE.search(text):
            self.status = " ".join(text.split())[:60]
            return
        if not text.strip():
            return
        with self._lock:
            if self.bar is not None:
                self.bar.write("    " + text, file=sys.stdout)
            else:
                print("    " + text, flush=True)

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.5):
            self._tick()

    def _tick(self) -> None:
        elapsed = time.time() - self.t0
        with self._lock:
            if self.bar is not None:
                self.bar.n = min(round(elapsed), max(round(self.expected) - 1, 0))
                self.bar.set_postfix_str(
                    f"whole run ETA {_fmt(self.eta())}  {self.status}", refresh=False
                )
                self.bar.refresh()
            elif time.time() - self._last_beat >= self.heartbeat:
                self._last_beat = time.time()
                print(
                    f"    .. {self.label}: {_fmt(elapsed)} of ~{_fmt(self.expected)}, "
                    f"whole run ETA {_fmt(self.eta())}  {self.status}",
                    flush=True,
                )

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()
        if self.bar is not None:
            self.bar.n = self.bar.total
            self.bar.set_postfix_str("", refresh=False)
            self.bar.close()


def run_stages(stages: list[Stage], run_dir: Path, quick: bool, force: bool) -> None:
    col = 0 if quick else 1
    t_start = time.time()
    spent = expected_done = 0.0  # actual and expected seconds of the stages run so far
    todo = [
        st
        for st in stages
        if st.status == "pending" and (force or not st.reusable(run_dir))
    ]
    for i, st in enumerate(stages, 1):
        if st.status == "unavailable":
            print(f"[{i}/{len(stages)}] {st.title}: skipped ({st.command[0]} is not installed)")
            continue
        expected = EXPECTED_S[st.name][col]
        if st not in todo:
            st.status = "reused"
            print(f"[{i}/{len(stages)}] {st.title}: reused ({st.outputs[0].relative_to(run_dir)})")
            continue
        todo.remove(st)
        rest = sum(EXPECTED_S[t.name][col] for t in todo)
        scale = spent / expected_done if expected_done else 1.0
        print(
            f"\n[{i}/{len(stages)}] {st.title} -- about {_fmt(expected * scale)}; "
            f"whole run ETA {_fmt(whole_run_eta(expected, 0, rest, scale))}",
            flush=True,
        )
        st.log = run_dir / "logs" / f"{st.name}.log"
        st.log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(st.log, "w") as log:
            proc = subprocess.Popen(
                st.command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert proc.stdout is not None
            bar = StageBar(f"[{i}/{len(stages)}] {st.name}", expected, rest, scale)
            try:
                for line in proc.stdout:  # universal newlines: a bar's \r updates arrive as lines
                    log.write(line)
                    bar.line(line)
                rc = proc.wait()
            finally:
                bar.close()
        st.seconds = time.time() - t0
        spent += st.seconds
        expected_done += expected
        if st.name == "benchmark" and rc == 0:
            shutil.copyfile(st.log, st.outputs[0])
        st.status = (
            "done" if rc == 0 and all(p.exists() for p in st.outputs) else f"failed (exit {rc})"
        )
        if st.status == "done":
            st.stamp(run_dir).write_text(st.fingerprint() + "\n")
        print(
            f"[{i}/{len(stages)}] {st.title}: {st.status} in {_fmt(st.seconds)} "
            f"(total {_fmt(time.time() - t_start)})",
            flush=True,
        )


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
        pts = [
            (float(r[step_key]) if step_key else i, float(r[loss_key]))
            for i, r in enumerate(rows)
            if r.get(loss_key) not in (None, "")
        ]
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


def write_report(
    stages: list[Stage], run_dir: Path, quick: bool, total_s: float
) -> tuple[Path, Path]:
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
        lines += [
            "",
            "## Quantizer benchmark (ours / dense reference)",
            "",
            "```",
            bench.read_text().strip(),
            "```",
        ]
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
        lines += [
            "",
            "Paper-scale runs (with the real data prepared by `data_scripts/`):",
            "",
            "```bash",
        ]
        lines += paper_cmds + ["```"]
    md_path = run_dir / "report.md"
    md_path.write_text("\n".join(lines) + "\n")
    html_path = run_dir / "report.html"
    html_path.write_text(_markdown_to_html("\n".join(lines)))
    return md_path, html_path


def _markdown_to_html(md: str) -> str:
    """Just enough Markdown for this report: headings, tables, code blocks, images, paragraphs."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>RQ demo report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}"
        "pre{background:#f4f4f4;padding:8px;overflow-x:auto}img{max-width:100%}</style></head><body>",
    ]
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
                out.append(
                    "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
                )
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
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a ~3 minute smoke version")
    ap.add_argument("--force", action="store_true", help="redo finished stages")
    ap.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="default runs/demo (runs/demo-quick with --quick)",
    )
    ap.add_argument(
        "--only", nargs="*", help="stage names to run (figure, benchmark, byol-a, mid-net, dabs)"
    )
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
    (run_dir / "stages.json").write_text(
        json.dumps(
            [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 1)} for s in stages],
            indent=2,
        )
    )
    md, page = write_report(stages, run_dir, args.quick, total)
    print(f"\nreport: {md}\n        {page}")
    failed = [s.name for s in stages if s.status.startswith("failed")]
    if failed:
        print(f"failed stages: {failed} (logs in {run_dir / 'logs'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
