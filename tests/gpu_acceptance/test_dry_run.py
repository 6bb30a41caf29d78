"""scripts/gpu_acceptance.sh: the GPU acceptance run, end to end on CPU (--dry-run), so it
cannot rot between the rare GPU runs; and a failing step is recorded while the others go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
import acceptance  # noqa: E402
import summary  # noqa: E402

STEPS = ["install", *(s.name for s in acceptance.STEPS)]


def test_dry_run_passes_every_step_and_reports_each(tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "RQ_PYTHON": sys.executable,
        "RQ_CACHE": str(tmp_path / "cache"),
        "RQ_GPU_DIR": str(tmp_path / "no-wheels-here"),
    }
    done = subprocess.run(
        [str(ROOT / "scripts" / "gpu_acceptance.sh"), str(out), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = (
        (out / "summary.md").read_text() if (out / "summary.md").is_file() else "(no summary.md)"
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:] + report
    assert (out / "acceptance.log").read_text().count("[run] ") >= len(STEPS) - 1
    for name in STEPS:
        result = json.loads((out / "results" / f"{name}.json").read_text())
        assert result["status"] == "ok", (name, result.get("error"))
        assert (out / result["log"]).is_file()
    assert "DRY RUN" in report and "**Result: every step passed**" in report
    for heading in [
        "## Tests on the device",
        "## Quantizer",
        "## Demo: byol-a",
        "## Demo: mid-net",
        "## Demo: dabs",
        "## Paper model: byol-a",
        "## Paper model: mid-net",
        "## Paper model: dabs",
        "## Input pipeline against the GPU",
    ]:
        assert heading in report, heading
    # The GPU tests were collected (and skipped here, without CUDA); each demo ran its trainers
    # through the app's command line; each paper model was timed with and without RQ.
    tests = json.loads((out / "results" / "tests.json").read_text())["data"]
    assert tests["tests"] > 100 and tests["skipped"] == tests["tests"]
    for app in acceptance.APPS:
        demo = json.loads((out / "results" / f"demo-{app}.json").read_text())["data"]
        assert demo["trainers"] >= 1 and demo["results_md"], app
        rows = json.loads((out / "results" / f"paper-{app}.json").read_text())["data"]["rows"]
        assert [row["rq"] for row in rows] == [True, False] and all(
            row["step_s_median"] > 0 for row in rows
        )
        pipeline = json.loads((out / "results" / f"pipeline-{app}.json").read_text())["data"]
        assert pipeline["samples_per_s"] > 0


def test_a_failing_step_is_recorded_with_its_log_and_the_others_still_run(tmp_path, monkeypatch):
    def boom(ctx):
        print("about to fail")
        raise ValueError("the kernel disagrees")

    monkeypatch.setattr(
        acceptance,
        "STEPS",
        [
            acceptance.Step("boom", 1, boom, 10, "fails"),
            acceptance.Step("fine", 2, lambda ctx: {"answer": 42}, 10, "works"),
        ],
    )
    assert acceptance.main([str(tmp_path), "--dry-run"]) == 1
    assert json.loads((tmp_path / "results" / "fine.json").read_text())["data"] == {"answer": 42}
    failed = json.loads((tmp_path / "results" / "boom.json").read_text())
    assert failed["status"] == "FAILED" and failed["error"] == "ValueError: the kernel disagrees"
    report = (tmp_path / "summary.md").read_text()
    assert "**Result: FAILED (boom)**" in report
    assert "| boom | fails | FAILED |" in report and "| fine | works | ok |" in report
    assert (
        "about to fail" in report and "ValueError: the kernel disagrees" in report
    )  # the log's tail


def test_starvation_verdicts():
    assert summary.starvation(50.0, 100.0).startswith("the GPU starves: the loader delivers 50%")
    assert "waits about 50%" in summary.starvation(50.0, 100.0)
    assert summary.starvation(300.0, 100.0).startswith(
        "the GPU is the bottleneck: the loader could feed 3.0x"
    )
    assert summary.starvation(100.0, 100.0).startswith("about even")
