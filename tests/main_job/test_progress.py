"""The main job's progress display (issue 8): one bar per stage, an ETA for the whole run."""

import importlib.util
import io
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def main_job():
    spec = importlib.util.spec_from_file_location("main_job", ROOT / "scripts" / "main_job.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["main_job"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("main_job", None)


TQDM_LINE = "pretrain rq:  42%|####2     | 50/120 [00:31<00:44,  1.58it/s, loss=0.31]"
LIGHTNING_LINE = "Epoch 3: 100%|██████████| 13/13 [00:04<00:00,  2.9it/s, v_num=0]"
ORDINARY = [
    "building the corpus: 400 notes",
    "| method | instrument | keyword |",
    "probe seed 42: 61.2%",
]


def test_progress_lines_are_told_from_ordinary_output(main_job):
    assert main_job.PROGRESS_LINE.search(TQDM_LINE)
    assert main_job.PROGRESS_LINE.search(LIGHTNING_LINE)
    for line in ORDINARY:
        assert not main_job.PROGRESS_LINE.search(line), line


def test_whole_run_eta(main_job):
    # on schedule: the rest of this stage plus the later stages
    assert main_job.whole_run_eta(100, 40, 200, 1.0) == pytest.approx(260)
    # this machine took twice the measured time so far: everything left scales
    assert main_job.whole_run_eta(100, 40, 200, 2.0) == pytest.approx(520)
    # an overrunning stage still counts a tenth of its expected time, never negative
    assert main_job.whole_run_eta(100, 500, 0, 1.0) == pytest.approx(10)


def test_without_a_terminal_app_bars_become_heartbeat_status(main_job, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    bar = main_job.StageBar(
        "[3/5] byol-a", expected=125, rest_expected=300, scale=1.0, tty=False, heartbeat=0.2
    )
    for line in [ORDINARY[0], TQDM_LINE, ORDINARY[2]]:
        bar.line(line + "\n")
    time.sleep(0.8)
    bar.close()
    text = out.getvalue()
    assert "    " + ORDINARY[0] in text and "    " + ORDINARY[2] in text
    assert "[00:31<00:44" not in text.split("..")[0]  # the raw bar line is not echoed
    beats = [line for line in text.splitlines() if line.startswith("    .. [3/5] byol-a")]
    assert beats, text
    assert "whole run ETA 7m" in beats[0] and "pretrain rq: 42%" in beats[0]


def test_with_a_terminal_the_stage_gets_one_bar_that_ends_full(main_job, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    bar = main_job.StageBar("[1/5] figure", expected=5, rest_expected=10, scale=1.0, tty=True)
    bar.line(TQDM_LINE + "\n")
    bar.line(ORDINARY[0] + "\n")
    time.sleep(0.7)
    bar.close()
    text = out.getvalue()
    assert "[1/5] figure" in text and "whole run ETA" in text
    assert "    " + ORDINARY[0] in text
    final = text.rstrip("\n").split("\r")[-1]  # the bar as it was left on screen
    assert "100%|" in final and "5/~5 s" in final


def test_a_finished_stage_is_reused_only_while_its_config_is_unchanged(main_job, tmp_path):
    config = tmp_path / "demo.yaml"
    config.write_text("max_steps: 300\n")
    out = tmp_path / "run" / "results.json"
    count = tmp_path / "runs.txt"
    script = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); "
        "p.write_text('{}'); c = pathlib.Path(sys.argv[2]); c.write_text(c.read_text() + 'x' if c.exists() else 'x')"
    )

    def run_once():
        stage = main_job.Stage("figure", "a stage", [out], [sys.executable, "-c", script, str(out), str(count)],
                               inputs=[config])
        main_job.run_stages([stage], tmp_path / "run", quick=True, force=False)
        return stage.status

    assert run_once() == "done" and count.read_text() == "x"
    assert run_once() == "reused" and count.read_text() == "x"
    config.write_text("max_steps: 600\n")  # the demo config changed: its old results are stale
    assert run_once() == "done" and count.read_text() == "xx"
    assert run_once() == "reused"
    (tmp_path / "run" / "logs" / "figure.fingerprint").unlink()  # a run from before fingerprints
    assert run_once() == "done" and count.read_text() == "xxx"
