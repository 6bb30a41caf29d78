"""The main job's progress display (issue 8): one bar per stage, an ETA for the whole run,
heartbeat lines without a terminal; the child's output read without a thread (issue 14)."""

import io
import sys
import textwrap

import pytest
from rq_demo.progress import PROGRESS_LINE, StageBar, run_logged, whole_run_eta

TQDM_LINE = "pretrain rq:  42%|####2     | 50/120 [00:31<00:44,  1.58it/s, loss=0.31]"
LIGHTNING_LINE = "Epoch 3: 100%|██████████| 13/13 [00:04<00:00,  2.9it/s, v_num=0]"
ORDINARY = [
    "building the corpus: 400 notes",
    "| method | instrument | keyword |",
    "probe seed 42: 61.2%",
]


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_are_told_from_ordinary_output():
    assert PROGRESS_LINE.search(TQDM_LINE)
    assert PROGRESS_LINE.search(LIGHTNING_LINE)
    for line in ORDINARY:
        assert not PROGRESS_LINE.search(line), line


def test_whole_run_eta():
    # on schedule: the rest of this stage plus the later stages
    assert whole_run_eta(100, 40, 200, 1.0) == pytest.approx(260)
    # this machine took twice the measured time so far: everything left scales
    assert whole_run_eta(100, 40, 200, 2.0) == pytest.approx(520)
    # an overrunning stage still counts a tenth of its expected time, never negative
    assert whole_run_eta(100, 500, 0, 1.0) == pytest.approx(10)


def test_without_a_terminal_app_bars_become_heartbeat_status(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    clock = FakeClock()
    bar = StageBar(
        "[3/5] byol-a",
        expected=125,
        rest_expected=300,
        scale=1.0,
        tty=False,
        heartbeat=0.2,
        clock=clock,
    )
    for line in [ORDINARY[0], TQDM_LINE, ORDINARY[2]]:
        bar.line(line + "\n")
    bar.tick()  # no heartbeat due yet
    assert ".." not in out.getvalue()
    clock.now += 0.8
    bar.tick()
    bar.close()
    text = out.getvalue()
    assert "    " + ORDINARY[0] in text and "    " + ORDINARY[2] in text
    assert "[00:31<00:44" not in text.split("..")[0]  # the raw bar line is not echoed
    beats = [line for line in text.splitlines() if line.startswith("    .. [3/5] byol-a")]
    assert len(beats) == 1, text
    assert "whole run ETA 7m" in beats[0] and "pretrain rq: 42%" in beats[0]


def test_with_a_terminal_the_stage_gets_one_bar_that_ends_full(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    clock = FakeClock()
    bar = StageBar("[1/5] figure", expected=5, rest_expected=10, scale=1.0, tty=True, clock=clock)
    bar.line(TQDM_LINE + "\n")
    bar.line(ORDINARY[0] + "\n")
    clock.now += 0.7
    bar.tick()
    bar.close()
    text = out.getvalue()
    assert "[1/5] figure" in text and "whole run ETA" in text
    assert "    " + ORDINARY[0] in text
    final = text.rstrip("\n").split("\r")[-1]  # the bar as it was left on screen
    assert "100%|" in final and "5/~5 s" in final


class RecordingBar:
    """Stands in for StageBar: records lines and counts the ticks that come after the line
    ``wait_for``; the third of those lets the child go on (creates the file ``go``): a
    reader that ticks only when output arrives gets there only after more output."""

    def __init__(self, go, wait_for=None):
        self.go, self.wait_for, self.lines, self.ticks = go, wait_for, [], 0

    def line(self, text):
        self.lines.append(text)

    def tick(self):
        if self.wait_for in self.lines:
            self.ticks += 1
            if self.ticks >= 3:
                self.go.touch()


def test_the_display_ticks_while_the_child_is_silent_and_splits_bar_redraws(tmp_path):
    """The child redraws a bar ("\\r", no newline), then says nothing until the display has
    ticked after reading it (it waits for the file that tick creates): a reader that blocks
    on the next line would never tick, and the child would give up (exit 3). The "\\r" that
    ends the first write and the "\\n" that starts the second end one line, not two."""
    go = tmp_path / "go"
    child = textwrap.dedent(
        f"""
        import pathlib, sys, time
        out = sys.stdout
        out.write("building the corpus\\n\\r{TQDM_LINE}\\r"
                  "pretrain rq:  43%| 51/120 [00:32<00:43]\\r")
        out.flush()
        deadline = time.monotonic() + 30
        while not pathlib.Path({str(go)!r}).exists():
            if time.monotonic() > deadline:
                sys.exit(3)
            time.sleep(0.01)
        out.write("\\nprobe seed 42: 61.2%\\ntail without a newline")
        """
    )
    bar = RecordingBar(go, wait_for=TQDM_LINE)
    log = tmp_path / "logs" / "stage.log"
    rc = run_logged([sys.executable, "-c", child], log, bar, tick_s=0.05)
    assert rc == 0 and bar.ticks >= 3
    expected = [
        "building the corpus",
        "",
        TQDM_LINE,
        "pretrain rq:  43%| 51/120 [00:32<00:43]",  # "\r" then "\n" in two reads: one line end
        "probe seed 42: 61.2%",
        "tail without a newline",
    ]
    assert bar.lines == expected
    assert log.read_text() == "\n".join(expected) + "\n"


def test_the_exit_status_of_a_failing_child_comes_back(tmp_path):
    bar = RecordingBar(tmp_path / "go")
    command = [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(7)"]
    assert run_logged(command, tmp_path / "stage.log", bar) == 7
    assert bar.lines == ["boom"]  # stderr is read with stdout
