"""The main job's stages: what each runs, whether a finished one is reused, and running them.

A stage is reused while its record (``RUN_DIR/logs/NAME.stage.json``, an
:class:`rq_core.runs.Stage`) says it finished with the same settings and its outputs are
there. The settings are the command (without the interpreter's path) and the content hash of
the files that decide the result (an app's demo config, the benchmark script): editing
demo.yaml or pulling a new one reruns that app's stage (the app itself then reuses what still
matches). ``--force`` reruns every stage, and asks the apps that take it to redo their own
finished runs too (:attr:`rq_demo.apps.AppSpec.accepts_force`).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rq_core.runs import Stage

from rq_demo.apps import APPS, BENCHMARK_TIME, FIGURE_TIME, ROOT, AppSpec, StageTime
from rq_demo.progress import StageBar, format_duration, run_logged, whole_run_eta

# The argument the main job appends to an app's `demo` under --force (the app's config key).
FORCE_OVERRIDE = "force=true"


@dataclass
class DemoStage:
    """One stage of the main job: a command that writes ``outputs``."""

    name: str
    title: str
    outputs: list[Path]
    command: list[str]
    expected: StageTime
    inputs: list[Path] = field(default_factory=list)  # files that decide the stage's result
    # Appended to the command under --force; not part of the settings, so a forced run is
    # reused by the next plain one.
    forced_args: list[str] = field(default_factory=list)
    status: str = "pending"  # pending, unavailable, reused, done, failed (exit N)
    seconds: float = 0.0
    log: Path | None = None

    def settings(self) -> dict:
        """What the stage's result depends on: the command without the interpreter's path
        (the same run from another venv is the same run) and each input's SHA-256."""
        return {
            "command": self.command[1:],
            "inputs": {_shown(path): _sha256(path) for path in self.inputs},
        }

    def record(self, run_dir: Path) -> Stage:
        return Stage(run_dir / "logs", self.settings(), record=f"{self.name}.stage.json")

    def plan(self, run_dir: Path, force: bool) -> str | None:
        """Why the stage must run (``None``: reuse it)."""
        check = self.record(run_dir).check(force=force)
        missing = [p for p in self.outputs if not p.exists()]
        if check.state == "done" and not missing:
            return None
        if check.state == "changed":
            return "changed since it ran: " + ", ".join(check.changed)
        if check.state == "done":
            return f"{_shown(missing[0])} is missing"
        return {"new": "", "forced": "--force", "resume": "it did not finish"}[check.state]


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _shown(path: Path) -> str:
    """A path as messages and records show it: relative to the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _venv_bin(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def app_stage(app: AppSpec, run_dir: Path, quick: bool) -> DemoStage:
    """``APP demo [--config demo_quick.yaml] run_dir=RUN_DIR/APP``."""
    exe = _venv_bin(app.script)
    app_dir = run_dir / app.name
    command = [exe or app.script, "demo"]
    if quick:
        command += ["--config", str(app.quick_config)]
    command.append(f"run_dir={app_dir}")
    stage = DemoStage(
        app.name,
        app.section_title,
        [app_dir / "results.json"],
        command,
        app.expected,
        inputs=[app.config(quick)],
        forced_args=[FORCE_OVERRIDE] if app.accepts_force else [],
    )
    if exe is None:
        stage.status = "unavailable"
    return stage


def build_stages(run_dir: Path, quick: bool, apps: Sequence[AppSpec] = APPS) -> list[DemoStage]:
    """The augmentation picture, the quantizer benchmark, then each app's demo."""
    python = sys.executable
    benchmark = ROOT / "benchmarks" / "quantize.py"
    return [
        DemoStage(
            "figure",
            "Augmentation picture (Figure 2 style)",
            [run_dir / "rq_figure.png"],
            [
                python,
                str(Path(__file__).with_name("figure.py")),
                "--out",
                str(run_dir / "rq_figure.png"),
            ],
            FIGURE_TIME,
        ),
        DemoStage(
            "benchmark",
            "Quantizer vs the dense reference algorithm",
            [run_dir / "benchmark" / "results.json"],
            [python, str(benchmark), "--device", "cpu", "--repeats", "2"]
            + (["--quick"] if quick else [])
            + ["--results-dir", str(run_dir / "benchmark")],
            BENCHMARK_TIME,
            inputs=[benchmark],
        ),
        *(app_stage(app, run_dir, quick) for app in apps),
    ]


def run_stages(stages: list[DemoStage], run_dir: Path, quick: bool, force: bool) -> None:
    """Run what must run, reuse the rest; set each stage's ``status`` and ``seconds``."""
    started = time.monotonic()
    spent = expected_done = 0.0  # actual and expected seconds of the stages run so far
    reasons = {st.name: st.plan(run_dir, force) for st in stages if st.status == "pending"}
    todo = [st for st in stages if st.status == "pending" and reasons[st.name] is not None]
    for i, st in enumerate(stages, 1):
        head = f"[{i}/{len(stages)}]"
        if st.status == "unavailable":
            print(f"{head} {st.title}: skipped ({st.command[0]} is not installed)")
            continue
        if st not in todo:
            st.status = "reused"
            print(f"{head} {st.title}: reused ({_shown(st.outputs[0])})")
            continue
        todo.remove(st)
        expected = st.expected.of(quick)
        rest = sum(t.expected.of(quick) for t in todo)
        scale = spent / expected_done if expected_done else 1.0
        why = f" ({reasons[st.name]})" if reasons[st.name] else ""
        print(
            f"\n{head} {st.title}{why} -- about {format_duration(expected * scale)}; "
            f"whole run ETA {format_duration(whole_run_eta(expected, 0, rest, scale))}",
            flush=True,
        )
        record = st.record(run_dir)
        # A run that fails or is killed must not leave the last run's record to be reused.
        record.path.unlink(missing_ok=True)
        st.log = run_dir / "logs" / f"{st.name}.log"
        bar = StageBar(f"{head} {st.name}", expected, rest, scale)
        t0 = time.monotonic()
        try:
            command = st.command + (st.forced_args if force else [])
            rc = run_logged(command, st.log, bar, cwd=ROOT)
        finally:
            bar.close()
        st.seconds = time.monotonic() - t0
        spent += st.seconds
        expected_done += expected
        ok = rc == 0 and all(p.exists() for p in st.outputs)
        st.status = "done" if ok else f"failed (exit {rc})"
        if ok:
            record.finish(seconds=round(st.seconds, 1))
        print(
            f"{head} {st.title}: {st.status} in {format_duration(st.seconds)} "
            f"(total {format_duration(time.monotonic() - started)})",
            flush=True,
        )
