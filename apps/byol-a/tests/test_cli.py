import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from rq_byol_a.cli import CONFIG_DIR, run
from rq_byol_a.commands import resolve_chain
from rq_byol_a.config import ByolAAppConfig


def test_prepare_pretrain_embed_evaluate_on_a_tiny_config(tiny_config, capsys):
    cfg = yaml.safe_load(tiny_config.read_text())
    run_dir = Path(cfg["run_dir"])
    caches = run(["prepare", "--config", str(tiny_config)])
    assert [c.name for c in caches] == ["pretrain.h5", "tones.h5"] and all(
        c.is_file() for c in caches
    )

    encoder = run(["pretrain", "--config", str(tiny_config)])
    assert encoder == run_dir / "checkpoints" / "encoder.pt" and encoder.is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["augmentations"][-1] == {"name": "rq", "num_bins": 5, "channel_mode": "sample"}
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "step" and {"train/loss", "train/loss_epoch"} <= set(header), header
    stamp = encoder.stat().st_mtime_ns
    run(["pretrain", "--config", str(tiny_config)])  # finished: skipped, not retrained
    assert encoder.stat().st_mtime_ns == stamp and "skipping" in capsys.readouterr().out

    out = run(["embed", "--config", str(tiny_config)])
    data = np.load(out)
    assert data["features"].shape == (30, 32) and set(data["splits"]) == {"train", "valid", "test"}
    assert (run_dir / "embedding.csv").read_text().splitlines()[1] == "30,32"
    assert (run_dir / "metrics.csv").read_text().startswith("step")  # the training log is kept

    results = run(["evaluate", "--config", str(tiny_config)])
    written = json.loads((run_dir / "results.json").read_text())
    # the row is named by the method the encoder was pretrained with, not by the run dir
    tones = written["methods"]["rq"]["tasks"]["tones"]
    assert tones["accuracy_mean"] == results["methods"]["rq"]["tasks"]["tones"]["accuracy_mean"]
    assert 0.0 <= written["methods"]["rq"]["average_accuracy"] <= 1.0
    assert written["methods"]["rq"]["chain_from"] == "method=rq (preset)"
    # each accuracy with its 95 % bootstrap interval, in the table and in the JSON
    estimates = written["tables"][0]
    assert estimates["columns"] == ["method", "tones", "average"]
    cell = estimates["rows"][0]["tones"]
    assert cell["low"] <= 100 * tones["accuracy_mean"] <= cell["high"]
    assert re.search(r"\| rq \| [\d.]+ \[[\d.]+, [\d.]+\] \|", (run_dir / "results.md").read_text())
    assert (run_dir / "evaluation.csv").read_text().startswith("method,task,accuracy_mean")
    assert (run_dir / "metrics.csv").read_text().startswith("step")


def test_random_init_evaluation_and_mixup_override(tiny_config, tmp_path):
    run(
        [
            "evaluate",
            "--config",
            str(tiny_config),
            "evaluate.checkpoint=random",
            f"run_dir={tmp_path / 'rnd'}",
        ]
    )
    assert "random" in json.loads((tmp_path / "rnd" / "results.json").read_text())["methods"]
    assert (
        (tmp_path / "rnd" / "metrics.csv").read_text().startswith("method,task")
    )  # an evaluation-only run
    run(
        [
            "pretrain",
            "--config",
            str(tiny_config),
            f"run_dir={tmp_path / 'mix'}",
            (
                "augmentations=[{name: mixup, ratio: 0.4, memory_size: 16}, "
                "{name: random_resize_crop}]"
            ),
        ]
    )
    saved = yaml.safe_load((tmp_path / "mix" / "config.yaml").read_text())
    assert saved["augmentations"][0]["name"] == "mixup"
    record = json.loads((tmp_path / "mix" / "pretrain_settings.json").read_text())
    assert record["outputs"]["chain_from"] == "augmentations (explicit chain)"
    assert record["outputs"]["method"] == "custom"


def test_errors_name_the_problem(tiny_config, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run(["pretrain", "--config", str(tiny_config), "model.width=3"])
    assert e.value.code == 2 and "model.width" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no cache path"):
        run(["pretrain", "--config", str(tiny_config), "data.pretrain.cache=''"])
    with pytest.raises(ValueError, match="unknown name"):
        run(
            [
                "pretrain",
                "--config",
                str(tiny_config),
                f"run_dir={tmp_path / 'x'}",
                "augmentations=[{name: specaugment}]",
            ]
        )


def test_shipped_configs_load_with_the_papers_values():
    paper = run(["pretrain", "--config", str(CONFIG_DIR / "audioset_paper.yaml"), "--print-config"])
    assert paper is None  # printed only
    from rq_byol_a.config import ByolAAppConfig
    from rq_core.config import load_config

    p = load_config(ByolAAppConfig, CONFIG_DIR / "audioset_paper.yaml")
    rq_entry = {"name": "rq", "num_bins": 5, "channel_mode": "sample"}
    assert resolve_chain(p).augmentations[-1] == rq_entry
    assert (p.model.feature_dim, p.model.lr, p.data.batch_size, p.trainer.max_epochs) == (
        2048,
        3e-4,
        256,
        100,
    )
    assert {t.name: t.unit_sec for t in p.evaluate.tasks} == {
        "nsynth": 4.0,
        "us8k": 4.0,
        "vc1": 8.2,
        "voxforge": 5.8,
        "spcv2": 1.0,
        "spcv2_12": 1.0,
    }
    b = load_config(ByolAAppConfig, CONFIG_DIR / "audioset_byola.yaml")
    mixup = {"name": "mixup", "ratio": 0.4, "memory_size": 2048, "log_mixup_exp": True}
    assert resolve_chain(b).augmentations[0] == mixup
    for name in ("demo.yaml", "demo_quick.yaml"):
        d = load_config(ByolAAppConfig, CONFIG_DIR / name)
        assert list(d.demo.methods) == ["rq", "mixup"]


def test_a_run_dir_is_reused_only_with_the_same_settings(tiny_config, tmp_path, capsys):
    from omegaconf import OmegaConf
    from rq_byol_a import commands
    from rq_byol_a.config import ByolAAppConfig
    from rq_core.config import load_config

    cfg = yaml.safe_load(tiny_config.read_text())
    run_dir = Path(cfg["run_dir"])
    encoder = run(["pretrain", "--config", str(tiny_config)])
    stamp = encoder.stat().st_mtime_ns
    # logging cadence does not change what is learned: the finished run is reused
    run(["pretrain", "--config", str(tiny_config), "trainer.log_every_n_steps=2"])
    assert encoder.stat().st_mtime_ns == stamp and "skipping" in capsys.readouterr().out
    # a setting that does: refused, naming it, and the old run is untouched
    with pytest.raises(SystemExit) as refused:
        run(["pretrain", "--config", str(tiny_config), "model.encoder_channels=4"])
    error = capsys.readouterr().err
    assert refused.value.code == 2 and error.count("\n") == 1
    assert re.search("other settings.*model.encoder_channels", error)
    assert encoder.stat().st_mtime_ns == stamp
    # a larger budget continues the run from its last checkpoint
    run(["pretrain", "--config", str(tiny_config), "trainer.max_steps=5"])
    import torch

    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 5
    stamp = encoder.stat().st_mtime_ns
    # the demo supersedes instead: the old run is moved aside (kept) and training starts anew
    changed = load_config(ByolAAppConfig, tiny_config, ["trainer.max_steps=2"])
    new = commands._pretrain(changed, run_dir, supersede=True)
    assert new.is_file() and new.stat().st_mtime_ns != stamp
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    aside = [p for p in run_dir.parent.iterdir() if p.name.startswith("run.superseded-")]
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "encoder.pt").is_file()
    saved = json.loads((run_dir / "pretrain_settings.json").read_text())
    assert saved["budget"]["max_steps"] == 2
    assert OmegaConf.to_container(changed.model) == saved["settings"]["model"]


def test_the_same_settings_give_the_same_encoder_whatever_ran_before(tiny_config, tmp_path):
    # The demo pretrains its first method after building caches, the others after a training:
    # the initial weights must come from trainer.seed, not from the process's RNG state.
    import torch

    first = run(["pretrain", "--config", str(tiny_config), f"run_dir={tmp_path / 'a'}"])
    torch.rand(1000)  # the process's global stream is now elsewhere
    second = run(["pretrain", "--config", str(tiny_config), f"run_dir={tmp_path / 'b'}"])
    other_seed = run(
        ["pretrain", "--config", str(tiny_config), f"run_dir={tmp_path / 'c'}", "trainer.seed=7"]
    )
    a, b, c = (torch.load(p, weights_only=False)["encoder"] for p in (first, second, other_seed))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_the_random_init_baseline_is_the_pretrainings_starting_point(tiny_config, tmp_path):
    def features(*overrides):
        out = tmp_path / f"f{len(list(tmp_path.glob('f*.npz')))}.npz"
        run(
            [
                "embed",
                "--config",
                str(tiny_config),
                "embed.checkpoint=random",
                f"embed.output={out}",
                f"run_dir={tmp_path / 'e'}",
                *overrides,
            ]
        )
        return np.load(out)["features"]

    by_trainer_seed = features("trainer.seed=5")
    assert np.array_equal(by_trainer_seed, features("trainer.seed=9", "demo.random_init_seed=5"))
    assert not np.array_equal(by_trainer_seed, features("trainer.seed=9"))


def test_force_redoes_a_finished_pretraining_and_keeps_the_old_one(tiny_config, tmp_path, capsys):
    run_dir = tmp_path / "forced"
    args = ["pretrain", "--config", str(tiny_config), f"run_dir={run_dir}"]
    encoder = run(args)
    stamp = encoder.stat().st_mtime_ns
    run([*args, "force=true"])  # finished with the same settings, trained again all the same
    assert encoder.stat().st_mtime_ns != stamp
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("forced.superseded-")]
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "encoder.pt").is_file()
    # A run whose record is gone is never continued blindly: refused in one line.
    (run_dir / "pretrain_settings.json").unlink()
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        run(args)
    error = capsys.readouterr().err
    assert refused.value.code == 2 and "no pretrain_settings.json" in error


def _readme_commands(app: str = "rq-byol-a") -> list[list[str]]:
    """The `rq-byol-a pretrain` lines of README.md's audio section, as argument lists."""
    import shlex

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Audio (rq-audio, rq-byol-a)", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in section.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith(f"{app} pretrain ")]


def test_the_demo_and_the_readme_commands_resolve_to_the_same_chains(tmp_path, monkeypatch):
    """What `rq-byol-a demo` pretrains as `rq` / `mixup` is what the README's
    `rq-byol-a pretrain --config apps/byol-a/configs/demo.yaml method=...` lines train, and the
    presets are the paper's chains with the demo's one visible override."""
    from rq_core.config import load_config

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    demo = load_config(ByolAAppConfig, CONFIG_DIR / "demo.yaml")
    in_demo = {}
    for method in demo.demo.methods:
        chain = resolve_chain(demo, method)
        in_demo[chain.method] = chain.augmentations
    readme = {}
    for args in _readme_commands():
        assert run([*args, "--print-config"]) is None  # the line parses as a command
        config_path = args[args.index("--config") + 1]
        overrides = [a for a in args[1:] if "=" in a]
        chain = resolve_chain(load_config(ByolAAppConfig, config_path, overrides))
        if config_path.endswith("demo.yaml"):
            readme[chain.method] = chain.augmentations
    assert set(readme) == {"rq", "mixup"} and readme == in_demo
    assert in_demo["rq"][-1] == {"name": "rq", "num_bins": 5, "channel_mode": "frequency"}
    mixup = {"name": "mixup", "ratio": 0.4, "memory_size": 2048, "log_mixup_exp": True}
    assert in_demo["mixup"][0] == mixup
    # the paper's RQ chain differs from the demo's only by the visible override
    paper = resolve_chain(load_config(ByolAAppConfig, CONFIG_DIR / "audioset_paper.yaml"))
    assert paper.augmentations[:-1] == in_demo["rq"][:-1]
    assert {**paper.augmentations[-1], "channel_mode": "frequency"} == in_demo["rq"][-1]
    # precedence: an explicit chain replaces the preset
    explicit = load_config(ByolAAppConfig, CONFIG_DIR / "demo.yaml", ["augmentations=[{name: rq}]"])
    assert resolve_chain(explicit).augmentations == [{"name": "rq"}]
    with pytest.raises(SystemExit):
        run(
            [
                "pretrain",
                "--config",
                str(CONFIG_DIR / "demo.yaml"),
                "method=specaugment",
                f"run_dir={tmp_path / 'x'}",
            ]
        )


def test_a_tiny_sweep_reuses_its_finished_points(tiny_config, tmp_path, capsys):
    run_dir = tmp_path / "sweep"
    args = ["sweep", "--config", str(tiny_config), f"run_dir={run_dir}", "sweep.bins=[2,4]"]
    run(args)
    written = json.loads((run_dir / "results.json").read_text())
    rows = written["tables"][0]["rows"]
    assert [r["bins"] for r in rows] == [2, 4, "random", "mixup"]
    assert all(r["tones"]["low"] <= r["tones"]["value"] <= r["tones"]["high"] for r in rows)
    assert (run_dir / "sweep.png").stat().st_size > 0
    # each point trained the RQ chain with its number of bins
    for bins in (2, 4):
        point = run_dir / "sweep" / f"bins-{bins}-random-random"
        record = json.loads((point / "pretrain_settings.json").read_text())
        assert record["settings"]["augmentations"][-1]["num_bins"] == bins
    encoders = sorted(run_dir.glob("**/checkpoints/encoder.pt"))
    stamps = [p.stat().st_mtime_ns for p in encoders]
    assert len(encoders) == 3  # two points and the Mixup band
    capsys.readouterr()
    run(args)  # a second call reuses every finished point and the band's pretraining
    assert [p.stat().st_mtime_ns for p in encoders] == stamps
    assert capsys.readouterr().out.count(": reused") == 2
