"""A sweep of the quantizer's strength: pretrain and probe once per (bins, spacing, collapse).

The paper's ablations (Wu et al., ICCV 2023, Sec. 5) vary the number of bins, uniform vs
random bin spacing and random vs middle collapse. Each app's ``sweep`` command maps a
:class:`SweepPoint` onto its own quantizer keys and hands :func:`run_sweep` a function that
pretrains and probes one point; this module owns what is the same in every app: the grid,
one :class:`rq_core.runs.Stage` per point (a finished point is reused, ``force`` redoes it),
the table with intervals and the plot.

>>> cfg = SweepConfig(bins=[4, 16], spacing=["random", "uniform"])
>>> [p.name for p in sweep_points(cfg)]
['bins-4-random-random', 'bins-4-uniform-random', 'bins-16-random-random', 'bins-16-uniform-random']

Needs the ``train`` extra (matplotlib draws the plot).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rq_core.runs import ResultsTable, Stage, _cell_from_json, atomic_output, write_results
from rq_core.uncertainty import Estimate

__all__ = [
    "SweepConfig",
    "SweepPoint",
    "plot_sweep",
    "run_sweep",
    "sweep_points",
]

SPACINGS = ("random", "uniform")  # the quantizer's bin-edge spacings (rq_core.quantize)
COLLAPSES = ("random", "middle")  # where a bin collapses to (rq_core.quantize)


@dataclass
class SweepConfig:
    """The grid of a sweep (every combination is one point).

    Attributes:
        bins: numbers of bins per channel. The default brackets each app's paper setting
            (8 to 30 bins across the paper's modalities) by a factor of 2-4 each side.
        spacing: bin-edge spacings: ``random`` (the paper's) and/or ``uniform``.
        collapse: where a bin collapses: ``random`` (the paper's) and/or ``middle``.
    """

    bins: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32])
    spacing: list[str] = field(default_factory=lambda: ["random"])
    collapse: list[str] = field(default_factory=lambda: ["random"])


@dataclass(frozen=True)
class SweepPoint:
    """One quantizer setting of a sweep."""

    num_bins: int
    spacing: str = "random"
    collapse: str = "random"

    @property
    def name(self) -> str:
        """The point's folder name, e.g. ``bins-8-random-random``."""
        return f"bins-{self.num_bins}-{self.spacing}-{self.collapse}"


def sweep_points(cfg: SweepConfig) -> list[SweepPoint]:
    """Every (bins, spacing, collapse) of ``cfg``, bins outermost; a bad value raises
    ``ValueError`` naming the key and the value."""
    if not cfg.bins:
        raise ValueError("sweep.bins is empty: give at least one number of bins")
    for num_bins in cfg.bins:
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError(f"sweep.bins: {num_bins!r} is not a positive number of bins")
    for key, values, allowed in (
        ("spacing", cfg.spacing, SPACINGS),
        ("collapse", cfg.collapse, COLLAPSES),
    ):
        if not values:
            raise ValueError(f"sweep.{key} is empty: give one of {list(allowed)}")
        for value in values:
            if value not in allowed:
                raise ValueError(f"sweep.{key}: {value!r} is not one of {list(allowed)}")
    grid = itertools.product(dict.fromkeys(cfg.bins), cfg.spacing, cfg.collapse)
    return [SweepPoint(int(b), s, c) for b, s, c in grid]


def _estimate(value: Estimate | Mapping[str, Any]) -> Estimate:
    """An estimate, or its JSON (a stage record, a results.json cell) made one again."""
    return value if isinstance(value, Estimate) else _cell_from_json(value)


def run_sweep(
    points: Sequence[SweepPoint],
    run_point: Callable[[SweepPoint, Path], Mapping[str, Estimate]],
    *,
    run_dir: str | os.PathLike,
    settings: Mapping[str, Any],
    force: bool = False,
    bands: Mapping[str, Mapping[str, Estimate]] | None = None,
    title: str = "Sweep of the quantizer",
    plot: bool = True,
) -> list[ResultsTable]:
    """Run (or reuse) every point, then write ``run_dir/results.{json,md}`` and
    ``run_dir/sweep.png``.

    Args:
        points: from :func:`sweep_points`.
        run_point: ``(point, point_dir) -> {column: Estimate}``: pretrain with the point's
            quantizer and probe; ``point_dir`` is the point's own folder
            (``run_dir/sweep/<point.name>``). Estimates in percent, as the tables show them.
        settings: everything else that shapes a point's result (data, budget, seeds); a
            finished point made with other settings is moved aside and redone.
        force: redo finished points.
        bands: reference rows drawn as horizontal bands, e.g. ``{"random": {...},
            "mixup": {...}}`` (same columns).

    Returns:
        ``[table]``: one row per point (``bins``, ``spacing``, ``collapse``, a column per
        metric) followed by the bands' rows.
    """
    run_dir = Path(run_dir)
    results: dict[SweepPoint, dict[str, Estimate]] = {}
    for index, point in enumerate(points):
        stage = Stage(run_dir / "sweep" / point.name, {"point": asdict(point), **settings})
        check = stage.prepare(force=force, on_change="supersede")
        if check.state == "done":
            print(f"[sweep] {index + 1}/{len(points)} {point.name}: reused ({stage.path})")
            stored = stage.outputs()
            # stage.json sorts its keys: the column order is kept beside the estimates
            order = stored.get("columns") or sorted(stored["estimates"])
            estimates = {k: _estimate(stored["estimates"][k]) for k in order}
        else:
            print(f"[sweep] {index + 1}/{len(points)} {point.name}: running", flush=True)
            estimates = {k: _estimate(v) for k, v in run_point(point, stage.directory).items()}
            stage.finish(
                columns=list(estimates), estimates={k: v.to_json() for k, v in estimates.items()}
            )
        results[point] = estimates

    columns: list[str] = []
    for estimates in [*results.values(), *(bands or {}).values()]:
        columns += [c for c in estimates if c not in columns]
    table = ResultsTable(title, ["bins", "spacing", "collapse", *columns])
    for point, estimates in results.items():
        table.add(bins=point.num_bins, spacing=point.spacing, collapse=point.collapse, **estimates)
    for name, estimates in (bands or {}).items():
        references = {k: _estimate(v) for k, v in estimates.items()}
        table.add(bins=name, spacing="", collapse="", **references)
    table.notes.append(
        "Each cell: the probe's metric with its 95 % bootstrap interval over test items. "
        "Rows without bins are the references (random init, the modality's baseline)."
    )
    write_results(run_dir, [table], {"points": [asdict(p) for p in results]}, title=title)
    if plot:
        plot_sweep(table, run_dir / "sweep.png")
    return [table]


def plot_sweep(table: ResultsTable, path: str | os.PathLike) -> Path:
    """Draw metric vs number of bins: one line (with its interval as error bars) per
    (column, spacing, collapse), references as horizontal bands; write ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = table.columns[3:]
    fig, axes = plt.subplots(
        1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False, sharey=False
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, column in zip(axes[0], columns):
        points = [r for r in table.rows if isinstance(r["bins"], int)]
        variants = dict.fromkeys((r["spacing"], r["collapse"]) for r in points)
        for (spacing, collapse), colour in zip(variants, itertools.cycle(colours)):
            rows = sorted(
                (r for r in points if (r["spacing"], r["collapse"]) == (spacing, collapse)),
                key=lambda r: r["bins"],
            )
            rows = [r for r in rows if column in r]
            if not rows:
                continue
            x = [r["bins"] for r in rows]
            y = [_estimate(r[column]).value for r in rows]
            err = [
                [_estimate(r[column]).value - _estimate(r[column]).low for r in rows],
                [_estimate(r[column]).high - _estimate(r[column]).value for r in rows],
            ]
            label = f"RQ ({spacing} spacing, {collapse} collapse)"
            axis.errorbar(x, y, yerr=err, marker="o", capsize=3, color=colour, label=label)
        references = [r for r in table.rows if not isinstance(r["bins"], int) and column in r]
        for row, colour in zip(references, itertools.cycle(["0.5", "tab:red", "tab:purple"])):
            estimate = _estimate(row[column])
            axis.axhspan(estimate.low, estimate.high, color=colour, alpha=0.18)
            axis.axhline(estimate.value, color=colour, linestyle="--", label=str(row["bins"]))
        axis.set_xscale("log", base=2)
        bins = sorted({r["bins"] for r in table.rows if isinstance(r["bins"], int)})
        axis.set_xticks(bins, [str(b) for b in bins])  # 4, 8, 16 rather than 2^2, 2^3, 2^4
        axis.minorticks_off()
        axis.set_xlabel("bins per channel")
        axis.set_title(column)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("probe metric (%)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
