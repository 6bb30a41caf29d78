"""The README's main job in its --quick form, end to end (issue 8): every stage runs, and the
report's tables hold numbers this run produced, nested under the report's own headings and
with the quantizer benchmark as a table (issue 14). It runs with the network blocked and an
empty data cache (issue 13): everything the demos build comes from installed packages and the
pinned assets that setup fetched, never from a download at run time."""

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


def test_the_offline_environment_blocks_the_network(offline_env):
    """The block the main job runs under works, also for pip in a subprocess."""
    env, log = offline_env
    probe = "import socket; socket.create_connection(('pypi.org', 443), timeout=5)"
    probed = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True)
    assert probed.returncode != 0
    pip = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-cache-dir",
        "-q",
        "--retries",
        "0",
        "--timeout",
        "5",
        "-d",
        str(log.parent / "wheels"),
        "aeon==1.6.0",
    ]
    assert subprocess.run(pip, env=env, capture_output=True, timeout=300).returncode != 0
    attempts = log.read_text().splitlines()
    assert any("-c: getaddrinfo 'pypi.org'" in line for line in attempts), attempts
    assert any("pip" in line.split(":")[0] for line in attempts), attempts  # pip's own attempt


def test_quick_main_job_writes_a_filled_report(tmp_path, offline_env):
    from rq_dabs.data.assets import fetch_assets

    env, network_log = offline_env
    # The pinned DABS assets are what `./dev setup` fetched (fetched here, before the network is
    # blocked, only if setup has not run); every other cache starts empty.
    assets = fetch_assets()
    env.update(RQ_CACHE=str(tmp_path / "cache"), RQ_ASSETS=str(assets[0].parents[1]))
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
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert network_log.read_text() == ""  # no process tried to reach the network
    # every requested domain / task / method has results (nothing skipped for want of data)
    dabs = json.loads((run_dir / "dabs" / "results.json").read_text())["results"]
    quick = (ROOT / "apps" / "dabs" / "configs" / "demo_quick.yaml").read_text()
    domains = re.search(r"domains: \[(.*)\]", quick).group(1).replace(" ", "").split(",")
    assert sorted(dabs) == sorted(domains)
    assert all(set(r) == {"rq", "emix", "random"} for r in dabs.values())
    audio = json.loads((run_dir / "byol-a" / "results.json").read_text())
    assert set(audio["tasks"]) == {"instrument_family", "keyword"}
    assert set(audio["methods"]) == {"random", "rq", "mixup"}

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
