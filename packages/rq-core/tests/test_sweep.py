"""rq_core.sweep: the grid, one reusable stage per point, the table and the plot."""

from __future__ import annotations

import json

import pytest
from rq_core.sweep import SweepConfig, SweepPoint, run_sweep, sweep_points
from rq_core.uncertainty import Estimate


def _fake_run(calls):
    def run_point(point: SweepPoint, directory):
        calls.append(point.name)
        assert directory.name == point.name and directory.is_dir()
        value = 50.0 + point.num_bins
        # not in alphabetical order: a reused point must keep the columns' order
        return {
            "keyword": Estimate(value, value - 2, value + 2, 0.95, 100),
            "average": Estimate(value, value - 1, value + 1, 0.95, 100),
        }

    return run_point


def test_points_cover_the_grid_and_bad_values_are_named():
    points = sweep_points(SweepConfig(bins=[8, 2, 8], collapse=["random", "middle"]))
    assert [(p.num_bins, p.collapse) for p in points] == [
        (8, "random"), (8, "middle"), (2, "random"), (2, "middle")
    ]  # fmt: skip
    with pytest.raises(ValueError, match="sweep.spacing: 'log' is not one of"):
        sweep_points(SweepConfig(spacing=["log"]))
    with pytest.raises(ValueError, match="sweep.bins: 0 is not a positive"):
        sweep_points(SweepConfig(bins=[4, 0]))
    with pytest.raises(ValueError, match="sweep.bins is empty"):
        sweep_points(SweepConfig(bins=[]))


def test_a_sweep_reuses_finished_points_redoes_changed_ones_and_plots(tmp_path):
    calls: list[str] = []
    points = sweep_points(SweepConfig(bins=[2, 8]))
    bands = {"random": {"keyword": Estimate(40.0, 38.0, 42.0)}}
    tables = run_sweep(
        points, _fake_run(calls), run_dir=tmp_path, settings={"steps": 3}, bands=bands
    )
    assert calls == ["bins-2-random-random", "bins-8-random-random"]
    rows = tables[0].rows
    assert [r["bins"] for r in rows] == [2, 8, "random"]
    assert str(rows[1]["keyword"]) == "58.0 [56.0, 60.0]"
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["tables"][0]["rows"][0]["keyword"]["value"] == 52.0

    # Same settings: both points reused, and the table is rebuilt from their records.
    again = run_sweep(points, _fake_run(calls), run_dir=tmp_path, settings={"steps": 3})
    assert len(calls) == 2
    assert (
        again[0].columns
        == tables[0].columns
        == ["bins", "spacing", "collapse", "keyword", "average"]
    )
    assert str(again[0].rows[0]["keyword"]) == "52.0 [50.0, 54.0]"
    # Other settings: redone, the old point kept aside; force redoes a finished one.
    run_sweep(points[:1], _fake_run(calls), run_dir=tmp_path, settings={"steps": 4}, plot=False)
    assert calls[2:] == ["bins-2-random-random"]
    assert any(
        p.name.startswith("bins-2-random-random.superseded-")
        for p in (tmp_path / "sweep").iterdir()
    )
    run_sweep(
        points[:1],
        _fake_run(calls),
        run_dir=tmp_path,
        settings={"steps": 4},
        force=True,
        plot=False,
    )
    assert calls[3:] == ["bins-2-random-random"]
