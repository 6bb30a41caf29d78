"""What the main job shows while a stage runs: a bar per stage, the whole-run ETA, and
heartbeat lines where there is no terminal (CI logs, ``nohup``).

One thread does everything: :func:`run_logged` reads the child's output as it comes and, at
least every ``tick_s`` seconds even while the child is silent, lets :class:`StageBar` redraw
its bar or print a heartbeat. The child's output goes to the stage's log in full; on the
console its ordinary lines are printed (indented) and the lines its own progress bars draw
(tqdm, Lightning) only relabel the stage's bar.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

# A line a tqdm bar (the apps' own, Lightning's) draws: "pretrain:  42%|####  | 50/120 [00:31<..".
PROGRESS_LINE = re.compile(r"\d+%\||\|\s*\d+/\d+\s*\[|\d+/\d+ \[\d|it/s\]|s/it\]")

# Line ends in the child's output: tqdm redraws its bar after a bare "\r".
_LINE_END = re.compile(rb"\r\n|\r|\n")


def format_duration(seconds: float) -> str:
    """``125.4`` -> ``'2m05s'``."""
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def whole_run_eta(expected: float, elapsed: float, rest_expected: float, scale: float) -> float:
    """Seconds left in the whole run: what the current stage still needs (at least a tenth of
    its expected time once it overruns) plus the stages after it, each scaled by how this
    machine compares with the measured times so far (actual / expected of finished stages)."""
    current = max(expected - elapsed, 0.1 * expected)
    return (current + rest_expected) * scale


class StageBar:
    """The progress of one stage: a bar of its elapsed time against the time it took on the
    reference machine, labelled with the child's latest progress line, and the whole-run ETA.

    Feed it the child's lines with :meth:`line` and call :meth:`tick` about twice a second
    (:func:`run_logged` does both). With a terminal the bar is redrawn on each tick; without
    one a status line is printed every ``heartbeat`` seconds instead.

    Args:
        label: the stage as the console names it, e.g. ``"[3/5] byol-a"``.
        expected: the stage's expected seconds; ``rest_expected``: the later stages' sum.
        scale: this machine's measured actual / expected ratio so far (1.0 at the start).
        tty: draw a bar (default: whether stdout is a terminal).
        heartbeat: seconds between status lines without a terminal.
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        label: str,
        expected: float,
        rest_expected: float,
        scale: float,
        tty: bool | None = None,
        heartbeat: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.expected, self.rest, self.scale = label, expected, rest_expected, scale
        self.out: TextIO = sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.heartbeat = heartbeat
        self.clock = clock
        self.status = ""  # the child's latest progress line, squeezed
        self.started = self._last_beat = clock()
        self.bar = None
        if self.tty:
            self.bar = tqdm(
                total=round(expected),
                desc=label,
                unit="s",
                file=self.out,
                bar_format="{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/~{total_fmt} s{postfix}",
                dynamic_ncols=True,
            )

    def elapsed(self) -> float:
        return self.clock() - self.started

    def eta(self) -> float:
        return whole_run_eta(self.expected, self.elapsed(), self.rest, self.scale)

    def line(self, text: str) -> None:
        """One line of the child's output (a bar redraw counts as a line)."""
        text = text.rstrip("\r\n")
        if PROGRESS_LINE.search(text):
            self.status = " ".join(text.split())[:60]
        elif text.strip():
            if self.bar is not None:
                self.bar.write("    " + text, file=self.out)
            else:
                print("    " + text, file=self.out, flush=True)

    def tick(self) -> None:
        """Redraw the bar, or print a heartbeat line when one is due."""
        elapsed = self.elapsed()
        if self.bar is not None:
            # The bar stops one short of full while the stage runs: full means finished.
            self.bar.n = min(round(elapsed), max(round(self.expected) - 1, 0))
            self.bar.set_postfix_str(
                f"whole run ETA {format_duration(self.eta())}  {self.status}", refresh=False
            )
            self.bar.refresh()
        elif self.clock() - self._last_beat >= self.heartbeat:
            self._last_beat = self.clock()
            print(
                f"    .. {self.label}: {format_duration(elapsed)} of "
                f"~{format_duration(self.expected)}, whole run ETA "
                f"{format_duration(self.eta())}  {self.status}",
                file=self.out,
                flush=True,
            )

    def close(self) -> None:
        """Leave the bar full (the stage has ended)."""
        if self.bar is not None:
            self.bar.n = self.bar.total
            self.bar.set_postfix_str("", refresh=False)
            self.bar.close()


def run_logged(
    command: Sequence[str],
    log: Path,
    bar: StageBar,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    tick_s: float = 0.5,
) -> int:
    """Run ``command`` with stdout and stderr together: each line (a bar's ``\\r`` redraw
    counts as one) goes to ``log`` and to ``bar.line``; ``bar.tick()`` runs at least every
    ``tick_s`` seconds, also while the child prints nothing. Returns the exit status.

    Reads the pipe's bytes as they arrive (POSIX ``select``), so a child that redraws a bar
    without ending the line, or says nothing for minutes, never blocks the display.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    with (
        open(log, "w", encoding="utf-8") as log_file,
        subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as child,
        selectors.DefaultSelector() as selector,
    ):
        assert child.stdout is not None
        fd = child.stdout.fileno()
        selector.register(fd, selectors.EVENT_READ)
        pending = b""
        last_tick = time.monotonic()

        def emit(raw: bytes) -> None:
            text = raw.decode("utf-8", errors="replace")
            log_file.write(text + "\n")
            bar.line(text)

        while True:
            if selector.select(timeout=tick_s):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                pending += chunk
                # A final "\r" may be the first half of "\r\n": keep it for the next chunk.
                held = b"\r" if pending.endswith(b"\r") else b""
                *lines, rest = _LINE_END.split(pending[: len(pending) - len(held)])
                pending = rest + held
                for raw in lines:
                    emit(raw)
            if time.monotonic() - last_tick >= tick_s:
                last_tick = time.monotonic()
                bar.tick()
        if pending.rstrip(b"\r"):
            emit(pending.rstrip(b"\r"))
        return child.wait()
