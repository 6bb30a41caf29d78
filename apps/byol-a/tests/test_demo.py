import json

import pytest
from rq_byol_a.cli import CONFIG_DIR, run


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path, monkeypatch):
    """The main job's quick mode: corpus -> RQ + Mixup pretraining -> probe table
    (about a minute idle)."""
    run_dir = tmp_path / "demo"
    results = run(["demo", "--config", str(CONFIG_DIR / "demo_quick.yaml"), f"run_dir={run_dir}"])
    written = json.loads((run_dir / "results.json").read_text())
    assert set(written["methods"]) == {"random", "rq", "mixup"}
    assert set(written["tasks"]) == {"instrument_family", "keyword"}
    for method in written["methods"].values():
        assert all(0.0 <= t["accuracy_mean"] <= 1.0 for t in method["tasks"].values())
    assert (run_dir / "rq" / "checkpoints" / "encoder.pt").is_file()
    assert (
        results["methods"]["rq"]["average_accuracy"] == written["methods"]["rq"]["average_accuracy"]
    )
    # Re-running reuses the corpus, the caches and the finished pretrainings.
    stamp = (run_dir / "rq" / "checkpoints" / "encoder.pt").stat().st_mtime_ns
    run(["demo", "--config", str(CONFIG_DIR / "demo_quick.yaml"), f"run_dir={run_dir}"])
    assert (run_dir / "rq" / "checkpoints" / "encoder.pt").stat().st_mtime_ns == stamp


def test_demo_without_the_soundfont_fails_in_one_line_naming_the_fix(tmp_path, monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(SystemExit) as exit_:
        run(
            [
                "demo",
                "--config",
                str(CONFIG_DIR / "demo_quick.yaml"),
                f"run_dir={tmp_path / 'demo'}",
                f"cache_dir={tmp_path / 'cache'}",
            ]
        )
    message = str(exit_.value.code)
    assert message.startswith("rq-byol-a demo: ") and "\n" not in message
    assert 'pip install "rq-audio[corpus]"' in message
