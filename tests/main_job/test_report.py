"""The main job's report (issue 14): each app's results nested under the report's own
headings, the quantizer benchmark as a table, HTML made by a Markdown library."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rq_core.runs import ResultsTable, write_results
from rq_demo.apps import APPS
from rq_demo.report import (
    demote_headings,
    loss_curve,
    render_html,
    report_markdown,
    results_markdown,
    write_report,
)
from rq_demo.stages import build_stages

ROOT = Path(__file__).resolve().parents[2]

# An app's results.md as the apps write it today: its own title and sub-headings.
APP_MARKDOWN = """# MID-Net demo (procedural shapes)

## natural_images

| backbone | cls lin 100% |
|---|---|
| rq | 71.2 ± 1.0 |

```
# a comment in a code block, not a heading
```
"""

BENCHMARK_ROW = {
    "case": "audio log-mel (256, 1, 64, 96) n=5",
    "device": "cpu",
    "ours_s": 0.008,
    "dense_s": 0.184,
    "speedup": 23.0,
    "ours_mem_x_input": 1.5,
    "dense_mem_x_input": 10.7,
}


@pytest.fixture(scope="module")
def quantize_benchmark():
    spec = importlib.util.spec_from_file_location("quantize", ROOT / "benchmarks" / "quantize.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["quantize"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("quantize", None)


@pytest.fixture
def run_dir(tmp_path, quantize_benchmark):
    """A run folder as the stages leave it: byol-a with only results.md (today's apps),
    mid-net with results.json tables (rq_core.runs.write_results), dabs not run."""
    byol_a = tmp_path / "byol-a"
    byol_a.mkdir()
    (byol_a / "results.json").write_text('{"probe": {"keyword": 93.0}}')
    (byol_a / "results.md").write_text(APP_MARKDOWN)
    table = ResultsTable("Linear probe", ["method", "shape"], [{"method": "rq", "shape": 88.25}])
    write_results(tmp_path / "mid-net", table, title="MID-Net demo")
    benchmark = quantize_benchmark.results_table([BENCHMARK_ROW])
    write_results(tmp_path / "benchmark", benchmark, {"rows": [BENCHMARK_ROW]}, title="Benchmark")
    return tmp_path


def headings(markdown: str) -> list[str]:
    """Every heading of ``markdown`` as ``"## text"`` (parsed: code blocks hold none)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    return [
        "#" * int(t.tag[1]) + " " + tokens[i + 1].content
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]


def section(report: str, heading: str) -> str:
    start = report.index(heading + "\n")
    following = report.find("\n## ", start + len(heading))
    return report[start : following if following > 0 else None]


def test_app_results_sit_under_the_reports_headings(run_dir):
    stages = build_stages(run_dir, quick=True)
    report = report_markdown(stages, run_dir, quick=True, total_s=61)
    assert report.startswith("# Randomized quantization suite: demo report (quick)\n")
    titles = [h for h in headings(report) if re.match(r"#{1,2} ", h)]
    assert [t for t in titles if t.startswith("# ")] == [titles[0]]  # one title, the report's
    assert titles[1:] == [
        "## Stages",
        "## Augmentation picture",
        "## Quantizer benchmark (ours / dense reference)",
        *(f"## {app.section_title}" for app in APPS),
    ]
    byol_a = section(report, f"## {APPS[0].section_title}")
    assert "### MID-Net demo (procedural shapes)" in byol_a and "#### natural_images" in byol_a
    assert "# a comment in a code block, not a heading" in byol_a  # code is not rewritten
    mid_net = section(report, f"## {APPS[1].section_title}")
    assert "### Linear probe" in mid_net and "| rq | 88.2 |" in mid_net  # from results.json
    assert "MID-Net demo" not in mid_net  # results.md's title is not used
    assert "_not run (see the stages table)_" in section(report, f"## {APPS[2].section_title}")
    for app in APPS:
        assert "\n".join(app.paper_commands) in section(report, f"## {app.section_title}")


def test_the_benchmark_is_a_table(run_dir):
    report = report_markdown(build_stages(run_dir, quick=True), run_dir, True, 61)
    benchmark = section(report, "## Quantizer benchmark (ours / dense reference)")
    rows = [line for line in benchmark.splitlines() if line.startswith("|")]
    assert rows[0] == (
        "| device | case | ours / dense time | speed-up | ours peak extra memory "
        "| dense peak extra memory |"
    )
    assert rows[2] == (
        "| cpu | audio log-mel (256, 1, 64, 96) n=5 | 0.0435 | x23.0 | 1.50x input | 10.70x input |"
    )
    assert "```" not in benchmark


def test_the_html_report_has_one_title_and_real_tables(run_dir):
    _, page = write_report(build_stages(run_dir, quick=True), run_dir, True, 61)
    html = page.read_text()
    assert html.count("<h1>") == 1
    assert html.count("<h2>") == 3 + len(APPS)
    assert html.count("<table>") == 4  # stages, benchmark, byol-a's results.md, mid-net's table
    assert "<td>x23.0</td>" in html
    assert '<img src="rq_figure.png"' not in html  # no picture was drawn in this run


def test_demoting_headings():
    assert demote_headings("no heading\n", 3) == "no heading\n"
    setext = "Results\n=======\n\nkeyword\n-------\ntext"
    assert demote_headings(setext, 3) == "### Results\n\n#### keyword\ntext"
    # Markdown has six levels: deeper headings stay at the sixth
    assert demote_headings("## a\n\n##### b", 4) == "#### a\n\n###### b"
    assert demote_headings("### already deep", 2) == "## already deep"


def test_html_escapes_raw_html():
    page = render_html("# A\n\n<script>alert(1)</script>\n", "t<")
    assert "<script>" not in page and "&lt;script&gt;" in page and "<title>t&lt;</title>" in page


def test_curves_read_the_training_loss_by_name(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,train/shape_loss,train/loss\n0,5.0,1.0\n10,4.0,0.5\n20,,\n")
    assert loss_curve(metrics) == ("train/loss", [(0.0, 1.0), (10.0, 0.5)])
    metrics.write_text("epoch,val_loss\n0,1.0\n")
    assert loss_curve(metrics) is None


def test_the_benchmark_script_writes_the_table_the_report_shows(tmp_path):
    out = tmp_path / "benchmark"
    command = [sys.executable, str(ROOT / "benchmarks" / "quantize.py"), "--device", "cpu"]
    command += ["--quick", "--shapes", "audio", "--repeats", "1", "--results-dir", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((out / "results.json").read_text())
    (row,) = data["rows"]
    assert row["case"].startswith("audio") and row["speedup"] > 0
    shown = results_markdown(out)
    assert shown.startswith("### Time and peak extra memory, ours vs the dense reference\n")
    assert f"| x{row['speedup']:.1f} |" in shown and data["setup"] in shown


def test_tables_with_intervals_show_them_as_the_app_wrote_them(tmp_path):
    # compare_methods' cells are Estimate / Comparison objects: results.json holds them as
    # dicts, and the report shows them as "93.0 [91.2, 94.5]", not as the dict.
    import numpy as np
    from rq_core.uncertainty import accuracy_statistic, compare_methods

    right = np.arange(200) % 4 != 0
    tables = compare_methods(
        "Linear probe",
        {
            "random": {"keyword": accuracy_statistic(right & (np.arange(200) % 3 != 0))},
            "rq": {"keyword": accuracy_statistic(right)},
        },
    )
    write_results(tmp_path, tables)
    shown = results_markdown(tmp_path)
    assert str(tables[0].rows[1]["keyword"]) in shown and "{" not in shown
    assert f"| rq | random | keyword | {tables[1].rows[0]['difference']} |" in shown
