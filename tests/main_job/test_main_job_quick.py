"""The README's main job in its --quick form, end to end (issue 8): every stage runs, and the
report's tables hold numbers this run produced, nested under the report's own headings and
with the quantizer benchmark as a table (issue 14)."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from rq_demo.apps import APPS

ROOT = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"\|\s*x?\d+(\.\d+)?")


def section(report: str, heading: str) -> str:
    start = report.index(heading)
    following = report.find("\n## ", start + len(heading))
    return report[start : following if following > 0 else None]


def test_quick_main_job_writes_a_filled_report(tmp_path):
    run_dir = tmp_path / "demo"
    start = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "main_job.py"),
            "--quick",
            "--run-dir",
            str(run_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    stages = json.loads((run_dir / "stages.json").read_text())
    assert [s["name"] for s in stages] == ["figure", "benchmark", *(app.name for app in APPS)]
    assert all(s["status"] == "done" for s in stages), stages  # nothing reused or skipped
    for stage in stages:  # each finished stage left its record for the next run's reuse
        record = json.loads((run_dir / "logs" / f"{stage['name']}.stage.json").read_text())
        assert record["finished"], stage

    report = (run_dir / "report.md").read_text()
    assert (run_dir / "report.html").read_text().count("<table>") >= 5
    assert (run_dir / "rq_figure.png").stat().st_size > 20_000
    # one title; every app's own headings sit below the report's sections
    titles = [line for line in report.splitlines() if line.startswith("# ")]
    assert titles == ["# Randomized quantization suite: demo report (quick)"], titles
    for app in APPS:
        results = run_dir / app.name / "results.json"
        assert results.stat().st_mtime >= start  # made by this run, not a cached copy
        # the app's section of the report carries its table, with numbers in it
        text = section(report, f"## {app.section_title}")
        text = text[: text.index("Paper-scale runs")]
        table_rows = [line for line in text.splitlines() if line.startswith("|")]
        assert len(table_rows) >= 3, text[:500]
        assert any(NUMBER.search(row) for row in table_rows[2:]), table_rows
    # the benchmark ran and was included as a table: a row per --quick shape, with speed-ups
    benchmark = section(report, "## Quantizer benchmark")
    rows = [line for line in benchmark.splitlines() if line.startswith("| cpu |")]
    assert len(rows) == 4, benchmark
    assert all(re.search(r"\| x\d+\.\d \|", row) for row in rows), rows
