"""The README's main job in its --quick form, end to end (issue 8): every stage runs, and the
report's tables hold numbers this run produced."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("byol-a", "mid-net", "dabs")
TITLES = {"byol-a": "audio (BYOL-A)", "mid-net": "points (MID-Net)", "dabs": "DABS (token embeddings)"}
NUMBER = re.compile(r"\|\s*\d+(\.\d+)?")


def test_quick_main_job_writes_a_filled_report(tmp_path):
    run_dir = tmp_path / "demo"
    start = time.time()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "main_job.py"), "--quick", "--run-dir", str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    stages = json.loads((run_dir / "stages.json").read_text())
    assert [s["name"] for s in stages] == ["figure", "benchmark", *APPS]
    assert all(s["status"] == "done" for s in stages), stages  # nothing reused or skipped

    report = (run_dir / "report.md").read_text()
    assert (run_dir / "report.html").read_text().count("<table>") >= 4
    assert (run_dir / "rq_figure.png").stat().st_size > 20_000
    for app in APPS:
        results = run_dir / app / "results.json"
        assert results.stat().st_mtime >= start  # made by this run, not a cached copy
        # the app's section of the report carries its table, with numbers in it
        start_at = report.index(f"## {TITLES[app]}: RQ vs")
        section = report[start_at : report.index("Paper-scale runs", start_at)]
        table_rows = [line for line in section.splitlines() if line.startswith("|")]
        assert len(table_rows) >= 3, section[:500]
        assert any(NUMBER.search(row) for row in table_rows[2:]), table_rows
    assert "speed-up x" in report  # the benchmark ran and was included
