"""The main job's report: ``report.md`` and the same text as ``report.html`` (markdown-it-py).

Layout: ``#`` title, then ``##`` sections (stages, augmentation picture, quantizer benchmark,
one per app); everything a stage brings sits at ``###`` or deeper under its section. An
app's results come from the ``tables`` of its ``results.json`` (what
:func:`rq_core.runs.write_results` stores) or, for an app that does not write them yet, from
its ``results.md`` with the headings moved down.
"""

from __future__ import annotations

import csv
import html
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from markdown_it import MarkdownIt
from rq_core.runs import ResultsTable, atomic_write

from rq_demo.apps import APPS, MEASURED_ON, AppSpec
from rq_demo.progress import format_duration
from rq_demo.stages import DemoStage

SECTION_LEVEL = 2  # the report's sections; what a stage brings goes one level deeper

# The training-loss column of a Lightning metrics.csv: every app logs its per-step loss as
# `train/loss` (docs/architecture.md, "Roles").
LOSS_COLUMNS = ("train/loss",)


def _parser() -> MarkdownIt:
    """CommonMark with tables (what GitHub shows too); raw HTML in the text is escaped."""
    return MarkdownIt("commonmark", {"html": False}).enable("table")


_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}"
    "pre{background:#f4f4f4;padding:8px;overflow-x:auto}img{max-width:100%}"
)


# ------------------------------------------------------------------------------ markdown


def demote_headings(markdown: str, top: int) -> str:
    """``markdown`` with its headings moved down so that the shallowest is at level ``top``
    (at most 6, Markdown's deepest); setext headings become ATX ones. Code blocks and other
    text are untouched (the text is parsed, not grepped).

    >>> print(demote_headings("# Results\\n\\n## keyword\\n\\n```\\n# not a heading\\n```", 3))
    ### Results
    <BLANKLINE>
    #### keyword
    <BLANKLINE>
    ```
    # not a heading
    ```
    """
    tokens = _parser().parse(markdown)
    headings = [t for t in tokens if t.type == "heading_open" and t.map and t.level == 0]
    if not headings:
        return markdown
    shift = top - min(int(t.tag[1]) for t in headings)
    lines = markdown.split("\n")
    for token in reversed(headings):  # from the end, so earlier line numbers stay valid
        start, end = token.map
        level = min(int(token.tag[1]) + shift, 6)
        if token.markup.startswith("#"):
            text = lines[start].lstrip()[len(token.markup) :]
            lines[start] = "#" * level + text
        else:  # setext: text lines, then a line of = or -
            text = " ".join(line.strip() for line in lines[start : end - 1])
            lines[start:end] = ["#" * level + " " + text]
    return "\n".join(lines)


def render_html(markdown: str, title: str) -> str:
    """A standalone HTML page of ``markdown`` (CommonMark and tables; raw HTML is escaped)."""
    body = _parser().render(markdown)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        f"{body}</body></html>\n"
    )


# ------------------------------------------------------------------------------ sections


def results_markdown(stage_dir: Path, level: int = SECTION_LEVEL + 1) -> str | None:
    """A stage's results as Markdown with no heading above ``level``: the ``tables`` of
    ``STAGE_DIR/results.json``, else ``results.md`` with its headings demoted, else the JSON
    itself; ``None`` without a ``results.json``."""
    results = stage_dir / "results.json"
    if not results.is_file():
        return None
    try:
        data = json.loads(results.read_text())
    except ValueError as error:
        return f"_{results.name} cannot be read: {error}_"
    tables = data.get("tables") if isinstance(data, dict) else None
    if tables:
        return "\n".join(ResultsTable.from_json(t).markdown(level=level) for t in tables)
    written = stage_dir / "results.md"
    if written.is_file():
        return demote_headings(written.read_text().strip(), level)
    return "```json\n" + json.dumps(data, indent=2)[:4000] + "\n```"


def loss_curve(metrics_csv: Path) -> tuple[str, list[tuple[float, float]]] | None:
    """The training loss of a Lightning ``metrics.csv`` as ``(column, [(step, loss), ...])``
    (the first of :data:`LOSS_COLUMNS` it has); ``None`` without one or without values."""
    with open(metrics_csv, newline="") as stream:
        rows = list(csv.DictReader(stream))
    column = next((c for c in LOSS_COLUMNS if rows and c in rows[0]), None)
    if column is None:
        return None
    points = [
        (float(row["step"]) if row.get("step") else float(i), float(row[column]))
        for i, row in enumerate(rows)
        if row.get(column)
    ]
    return (column, points) if points else None


def plot_curves(run_dir: Path, app: str) -> Path | None:
    """``RUN_DIR/curves_APP.png``: the training loss of every metrics.csv under the app's
    folder; ``None`` when there is nothing to draw."""
    curves = []
    for path in sorted((run_dir / app).rglob("metrics.csv")):
        curve = loss_curve(path)
        if curve is not None:
            curves.append((str(path.parent.relative_to(run_dir / app)), curve[1]))
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points in curves:
        ax.plot(*zip(*points), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"{app}: pretraining curves")
    ax.legend(fontsize=7)
    out = run_dir / f"curves_{app}.png"
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def stages_table(stages: Sequence[DemoStage], quick: bool) -> ResultsTable:
    table = ResultsTable("Stages", ["stage", "status", "wall time", "reference time"])
    for st in stages:
        table.add(
            stage=st.title,
            status=st.status,
            **{
                "wall time": format_duration(st.seconds) if st.seconds else "–",
                "reference time": format_duration(st.expected.of(quick)),
            },
        )
    table.notes.append(f"Reference times: measured on {MEASURED_ON}.")
    return table


def report_markdown(
    stages: Sequence[DemoStage],
    run_dir: Path,
    quick: bool,
    total_s: float,
    apps: Sequence[AppSpec] = APPS,
) -> str:
    section = "#" * SECTION_LEVEL
    parts = [
        f"# Randomized quantization suite: demo report{' (quick)' if quick else ''}\n",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} on {os.cpu_count()} CPU cores; "
        f"total wall time {format_duration(total_s)} (reused stages count 0).\n",
        stages_table(stages, quick).markdown(level=SECTION_LEVEL),
        f"{section} Augmentation picture\n",
    ]
    if (run_dir / "rq_figure.png").exists():
        parts.append("![randomized quantization views](rq_figure.png)\n")
    benchmark = results_markdown(run_dir / "benchmark")
    if benchmark is not None:
        parts += [f"{section} Quantizer benchmark (ours / dense reference)\n", benchmark]
    for app in apps:
        parts.append(f"{section} {app.section_title}\n")
        results = results_markdown(run_dir / app.name)
        if results is None:
            parts.append("_not run (see the stages table)_\n")
        else:
            parts.append(results)
            curves = plot_curves(run_dir, app.name)
            if curves:
                parts.append(f"![{app.name} curves]({curves.name})\n")
        parts.append("Paper-scale runs (with the real data prepared by `data_scripts/`):\n")
        parts.append("```bash\n" + "\n".join(app.paper_commands) + "\n```\n")
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def write_report(
    stages: Sequence[DemoStage],
    run_dir: Path,
    quick: bool,
    total_s: float,
    apps: Sequence[AppSpec] = APPS,
) -> tuple[Path, Path]:
    """Write ``RUN_DIR/report.md`` and ``RUN_DIR/report.html``; return their paths."""
    markdown = report_markdown(stages, run_dir, quick, total_s, apps)
    md_path = atomic_write(run_dir / "report.md", markdown)
    html_path = atomic_write(run_dir / "report.html", render_html(markdown, "RQ demo report"))
    return md_path, html_path
