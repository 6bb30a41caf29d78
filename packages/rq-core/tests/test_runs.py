"""The run layer: cache root, atomic files, rank-zero-first, stage records, results."""

import json
import os
import threading
import time

import pytest
from rq_core import runs
from rq_core.runs import (
    ResultsTable,
    Stage,
    StageChangedError,
    atomic_output,
    atomic_write,
    cache_root,
    rank_zero_first,
    remove_stray_temporaries,
    write_results,
)


def test_cache_root_prefers_the_override_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RQ_CACHE", str(tmp_path / "env"))
    assert cache_root("dabs") == tmp_path / "env" / "dabs"
    assert cache_root("dabs", override=tmp_path / "cfg") == tmp_path / "cfg" / "dabs"
    monkeypatch.delenv("RQ_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "rq"


def test_atomic_output_replaces_whole_or_leaves_the_old_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]  # no temporary left
    atomic_write(target, b"new")
    assert target.read_text() == "new"


def test_atomic_files_get_the_mode_of_a_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        mode = atomic_write(tmp_path / "x", "y").stat().st_mode & 0o777
    finally:
        os.umask(old)
    assert mode == 0o644  # mkstemp alone makes 0600


def test_suffix_keeps_numpy_from_renaming_the_temporary(tmp_path):
    np = pytest.importorskip("numpy")
    target = tmp_path / "f.npz"
    with atomic_output(target, suffix=".npz") as tmp:
        np.savez(tmp, a=np.arange(3))
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz"]


def test_remove_stray_temporaries_only_touches_that_targets_leftovers(tmp_path):
    (tmp_path / ".last.ckpt.abc.tmp").write_bytes(b"x")
    (tmp_path / ".other.ckpt.abc.tmp").write_bytes(b"x")
    (tmp_path / "last.ckpt").write_bytes(b"keep")
    removed = remove_stray_temporaries(tmp_path / "last.ckpt")
    assert [p.name for p in removed] == [".last.ckpt.abc.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ckpt.abc.tmp", "last.ckpt"]


def test_rank_zero_builds_and_other_ranks_wait(monkeypatch, tmp_path):
    target = tmp_path / "cache.h5"
    monkeypatch.setenv("RANK", "0")
    assert rank_zero_first(target, lambda: atomic_write(target, "data")) == target
    assert rank_zero_first(target, lambda: pytest.fail("built twice")) is None

    late = tmp_path / "late.h5"
    monkeypatch.setenv("RANK", "1")
    threading.Timer(0.3, lambda: atomic_write(late, "data")).start()
    started = time.monotonic()
    assert rank_zero_first(late, lambda: pytest.fail("rank 1 built"), poll_s=0.05) is None
    assert late.is_file() and time.monotonic() - started >= 0.25


def test_waiting_ranks_raise_rank_zeros_failure(monkeypatch, tmp_path):
    target = tmp_path / "cache.h5"

    def broken():
        raise OSError("disk full")

    monkeypatch.setenv("RANK", "0")
    with pytest.raises(OSError, match="disk full"):
        rank_zero_first(target, broken)
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match="rank 0 failed to build .*disk full"):
        rank_zero_first(target, broken, poll_s=0.01, timeout_s=5)
    monkeypatch.setenv("RANK", "0")  # the next run starts clean
    assert rank_zero_first(target, lambda: atomic_write(target, "ok")) == target
    assert not target.with_name("cache.h5.failed").exists()


def test_waiting_ranks_time_out_with_a_message(monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(TimeoutError, match="rank 2: waited"):
        rank_zero_first(tmp_path / "never", lambda: None, timeout_s=0.05, poll_s=0.01)


def test_stage_states(tmp_path):
    settings = {"model": {"dim": 8}, "seed": 1}
    stage = Stage(tmp_path / "s", settings, budget={"max_steps": 10})
    assert stage.check().state == "new"
    assert stage.prepare(on_change="refuse").state == "new"
    assert Stage(tmp_path / "s", settings, budget={"max_steps": 10}).check().state == "resume"
    stage.finish(accuracy=0.5)
    assert Stage(tmp_path / "s", settings, budget={"max_steps": 10}).check().reusable
    assert Stage(tmp_path / "s", settings).outputs() == {"accuracy": 0.5}
    more = Stage(tmp_path / "s", settings, budget={"max_steps": 20}).check()
    assert more.state == "resume"
    changed = Stage(tmp_path / "s", {"model": {"dim": 16}, "seed": 1}).check()
    assert changed.state == "changed" and changed.changed == ["model.dim"]
    assert Stage(tmp_path / "s", settings).check(force=True).state == "forced"


def test_tuples_and_lists_are_the_same_setting(tmp_path):
    Stage(tmp_path, {"ratios": (0.1, 1.0)}).finish()
    assert Stage(tmp_path, {"ratios": [0.1, 1.0]}).check().reusable


def test_changed_settings_are_refused_or_moved_aside_never_deleted(tmp_path, capsys):
    directory = tmp_path / "pretrain_rq"
    Stage(directory, {"lr": 1}).finish()
    (directory / "last.ckpt").write_bytes(b"weights")
    with pytest.raises(StageChangedError, match=r"pretrain_rq.*settings changed \(lr\)"):
        Stage(directory, {"lr": 2}).prepare(on_change="refuse")
    assert (directory / "last.ckpt").is_file()
    check = Stage(directory, {"lr": 2}).prepare(on_change="supersede")
    assert check.state == "changed"
    (aside,) = tmp_path.glob("pretrain_rq.superseded-*")
    assert (aside / "last.ckpt").read_bytes() == b"weights"
    assert json.loads((directory / "stage.json").read_text())["finished"] is False
    assert "kept at" in capsys.readouterr().out


def test_force_redoes_a_finished_stage_even_when_changes_are_refused(tmp_path):
    Stage(tmp_path / "s", {"lr": 1}).finish(result=1)
    check = Stage(tmp_path / "s", {"lr": 1}).prepare(force=True, on_change="refuse")
    assert check.state == "forced"
    assert Stage(tmp_path / "s", {"lr": 1}).check().state == "resume"  # started, unfinished
    assert len(list(tmp_path.glob("s.superseded-*"))) == 1


def test_unreadable_record_counts_as_none(tmp_path):
    (tmp_path / "stage.json").write_text("{half")
    assert Stage(tmp_path, {}).check().state == "new"


def test_results_table_and_writer(tmp_path):
    table = ResultsTable("Probe", ["method", "acc", "note"], notes=["mean over 3 seeds"])
    table.add(method="rq", acc=93.04, note=None)
    table.add(method="random", acc=float("nan"), note="x")
    with pytest.raises(KeyError, match="bogus"):
        table.add(method="m", bogus=1)
    json_path, md_path = write_results(tmp_path, table, {"seconds": 3}, title="Demo")
    data = json.loads(json_path.read_text())
    assert data["seconds"] == 3
    again = ResultsTable.from_json(data["tables"][0])
    assert again.markdown() == table.markdown()
    md = md_path.read_text()
    assert md.startswith("# Demo\n") and "## Probe" in md
    assert "| rq | 93.0 | – |" in md and "| random | – | x |" in md
    assert md.rstrip().endswith("mean over 3 seeds")
    with pytest.raises(ValueError, match="tables"):
        write_results(tmp_path, table, {"tables": 1})


def test_cells_may_be_objects_with_their_own_text_and_json(tmp_path):
    class Estimate:
        def __str__(self):
            return "93.0 [91.0, 95.0]"

        def to_json(self):
            return {"mean": 93.0, "low": 91.0, "high": 95.0}

    table = ResultsTable("", ["method", "acc"], [{"method": "rq", "acc": Estimate()}])
    json_path, _ = write_results(tmp_path, table)
    row = json.loads(json_path.read_text())["tables"][0]["rows"][0]
    assert row["acc"] == {"mean": 93.0, "low": 91.0, "high": 95.0}
    assert "| rq | 93.0 [91.0, 95.0] |" in table.markdown()


def test_process_rank_reads_the_launchers_variables(monkeypatch):
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert runs.process_rank() == 0
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert runs.process_rank() == 3
    monkeypatch.setenv("RANK", "5")
    assert runs.process_rank() == 5
