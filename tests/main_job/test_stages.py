"""The main job's stage reuse (rq_core.runs.Stage records): a finished stage is reused while
its command and demo config are unchanged; --force redoes it and reaches the app."""

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from rq_demo.apps import APPS, StageTime
from rq_demo.stages import FORCE_OVERRIDE, DemoStage, app_stage, build_stages, run_stages

# Writes sys.argv[1] ("{}"), appends "x" to the counter file sys.argv[2] and the rest of its
# arguments to sys.argv[3]; fails while the file sys.argv[4] exists.
CHILD = "\n".join(
    [
        "import pathlib, sys",
        "out, count, args, fail = map(pathlib.Path, sys.argv[1:5])",
        "if fail.exists(): sys.exit(1)",
        "out.parent.mkdir(parents=True, exist_ok=True)",
        "out.write_text('{}')",
        "count.write_text((count.read_text() if count.exists() else '') + 'x')",
        "args.write_text(' '.join(sys.argv[5:]))",
    ]
)


@pytest.fixture
def demo(tmp_path):
    """A one-stage main job in ``tmp_path``: ``run(force=False) -> status``."""
    config = tmp_path / "demo.yaml"
    config.write_text("max_steps: 300\n")
    paths = [tmp_path / n for n in ("run/app/results.json", "runs.txt", "args.txt", "fail")]

    class Demo:
        run_dir = tmp_path / "run"
        count, args, fail = paths[1:]
        forced_args = [FORCE_OVERRIDE]

        def run(self, force=False, python=sys.executable):
            stage = DemoStage(
                "figure",
                "a stage",
                [paths[0]],
                [python, "-c", CHILD, *map(str, paths)],
                StageTime(1, 1),
                inputs=[config],
                forced_args=self.forced_args,
            )
            run_stages([stage], self.run_dir, quick=True, force=force)
            return stage.status

    demo = Demo()
    demo.config = config
    return demo


def test_a_finished_stage_is_reused_only_while_its_config_is_unchanged(demo):
    assert demo.run() == "done" and demo.count.read_text() == "x"
    assert demo.run() == "reused" and demo.count.read_text() == "x"
    demo.config.write_text("max_steps: 600\n")  # the demo config changed: its old results are stale
    assert demo.run() == "done" and demo.count.read_text() == "xx"
    assert demo.run() == "reused"
    (demo.run_dir / "logs" / "figure.stage.json").unlink()  # a run from before the records
    assert demo.run() == "done" and demo.count.read_text() == "xxx"


def test_the_record_holds_the_command_without_the_interpreter_and_the_inputs_hash(demo):
    demo.run()
    record = json.loads((demo.run_dir / "logs" / "figure.stage.json").read_text())
    assert record["finished"] and record["settings"]["command"][0] == "-c"
    digest = hashlib.sha256(demo.config.read_bytes()).hexdigest()
    assert record["settings"]["inputs"] == {str(demo.config): digest}
    # the same command from another interpreter (another venv) is the same stage
    assert demo.run(python="/elsewhere/bin/python3") == "reused"


def test_force_redoes_a_finished_stage_and_passes_force_to_the_app(demo):
    assert demo.run() == "done" and demo.args.read_text() == ""
    assert demo.run(force=True) == "done" and demo.count.read_text() == "xx"
    assert demo.args.read_text() == FORCE_OVERRIDE
    # the forced run's record is the plain command's: the next plain run reuses it
    assert demo.run() == "reused" and demo.count.read_text() == "xx"


def test_an_app_that_does_not_take_force_is_not_given_it(demo):
    demo.forced_args = []
    assert demo.run(force=True) == "done" and demo.args.read_text() == ""


def test_a_failed_rerun_is_not_reused_later(demo):
    assert demo.run() == "done"
    demo.fail.touch()  # the forced rerun fails, leaving the earlier run's results.json behind
    assert demo.run(force=True) == "failed (exit 1)"
    demo.fail.unlink()
    assert demo.run() == "done" and demo.count.read_text() == "xx"


def test_app_stages_follow_the_registry(tmp_path):
    stages = build_stages(tmp_path, quick=True)
    assert [s.name for s in stages] == ["figure", "benchmark", *(a.name for a in APPS)]
    for app, stage in zip(APPS, stages[2:], strict=True):
        assert stage.command[1:3] == ["demo", "--config"]
        assert stage.command[3] == str(app.quick_config) and stage.inputs == [app.quick_config]
        assert stage.command[-1] == f"run_dir={tmp_path / app.name}"
        assert stage.expected == app.expected and stage.title == app.section_title
        # An app gets `force=true` under --force once its config has the key (issue 14).
        assert stage.forced_args == ([FORCE_OVERRIDE] if app.accepts_force else [])
    full = app_stage(APPS[0], tmp_path, quick=False)
    assert "--config" not in full.command and full.inputs == [APPS[0].demo_config]
    taking = app_stage(replace(APPS[0], accepts_force=True), tmp_path, quick=False)
    assert taking.forced_args == [FORCE_OVERRIDE]
    assert taking.settings() == full.settings()


def test_the_benchmark_stage_writes_its_results_where_the_report_reads_them(tmp_path):
    (benchmark,) = [s for s in build_stages(tmp_path, quick=True) if s.name == "benchmark"]
    assert benchmark.outputs == [tmp_path / "benchmark" / "results.json"]
    i = benchmark.command.index("--results-dir")
    assert Path(benchmark.command[i + 1]) == tmp_path / "benchmark"
