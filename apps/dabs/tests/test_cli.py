import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from rq_dabs.learner import load_encoder
from rq_dabs_app.cli import CONFIG_DIR as CONFIGS
from rq_dabs_app.cli import expand_shorthands, main


def test_shorthands_become_overrides():
    assert expand_shorthands(["pretrain", "--domain", "pamap2", "--algorithm=emix"]) == [
        "pretrain",
        "domain=pamap2",
        "algorithm=emix",
    ]
    with pytest.raises(SystemExit):
        expand_shorthands(["pretrain", "--domain"])


def test_pretrain_then_transfer_write_their_run_files(tmp_path, tiny):
    pre = tmp_path / "pre"
    main(
        [
            "pretrain",
            "--domain",
            "synthetic_markov_text",
            "--algorithm",
            "rq",
            *tiny,
            f"run_dir={pre}",
        ]
    )
    assert (pre / "config.yaml").is_file() and (pre / "metrics.csv").is_file()
    # the loss column every app logs, by the name the main job reads
    assert "train/loss" in (pre / "metrics.csv").read_text().splitlines()[0].split(",")
    assert (pre / "checkpoints" / "last.ckpt").is_file()
    encoder = load_encoder(pre / "checkpoints" / "encoder.pt")
    assert encoder.config.depth == 1
    # RQ without straight-through: the token table is exactly its initialization.
    torch.manual_seed(0)  # the trainer seed of the paper config is 0
    from rq_dabs.encoder import DomainAgnosticTransformer
    from rq_dabs.specs import InputTokensSpec

    fresh = DomainAgnosticTransformer([InputTokensSpec(32, 64)], encoder.config)
    assert torch.equal(fresh.embed_modules[0].embed.weight, encoder.embed_modules[0].embed.weight)
    assert not torch.equal(fresh.pos_embedding, encoder.pos_embedding)

    out = tmp_path / "transfer"
    # algorithm=emix is ignored: the row is named by what the pretraining recorded (rq)
    main(
        [
            "transfer",
            "domain=synthetic_markov_text",
            f"checkpoint={pre}",
            *tiny,
            f"run_dir={out}",
            "algorithm=emix",
        ]
    )
    results = json.loads((out / "results.json").read_text())["results"]
    r = results["synthetic_markov_text"]["rq"]
    assert 0.0 <= r["accuracy_mean"] <= 1.0 and len(r["accuracy_per_seed"]) == 1
    assert "| rq |" in (out / "results.md").read_text()
    assert (out / "config.yaml").is_file() and (out / "metrics.csv").is_file()
    heads = torch.load(out / "checkpoints" / "linear_heads.pt", weights_only=True)["heads"]
    assert heads[0]["weight"].shape == (4, 32)  # 4 classes from the pooled feature (model.dim=32)


def test_bad_names_are_clear_errors(tmp_path, tiny):
    with pytest.raises(SystemExit, match="unknown domain"):
        main(["pretrain", "domain=imagenet9", *tiny, f"run_dir={tmp_path}"])
    with pytest.raises(ValueError, match="unknown algorithm"):
        main(
            [
                "pretrain",
                "algorithm=byol",
                "domain=synthetic_markov_text",
                *tiny,
                f"run_dir={tmp_path}",
            ]
        )
    with pytest.raises(SystemExit, match="no encoder"):
        main(["transfer", "domain=synthetic_markov_text", f"checkpoint={tmp_path / 'none'}", *tiny])


def test_demo_quick_end_to_end_and_reuse(tmp_path, data_root, capsys):
    run = tmp_path / "demo"
    argv = [
        "demo",
        "--config",
        str(CONFIGS / "demo_quick.yaml"),
        f"run_dir={run}",
        f"data_root={data_root}",
        "trainer.max_steps=2",
        "threads=1",
    ]
    main(argv)
    results = json.loads((run / "results.json").read_text())["results"]
    assert set(results) == {"digits_images", "basic_motions_sensor", "synthetic_markov_text"}
    assert all(set(r) == {"rq", "emix", "random"} for r in results.values())
    # issue 15: one estimates table (method x domain, 95 % intervals over test items and
    # transfer seeds) and the paired comparisons against random init and e-Mix
    tables = json.loads((run / "results.json").read_text())["tables"]
    estimates, paired = tables[0], tables[1]
    assert [row["method"] for row in estimates["rows"]] == ["rq", "emix", "random"]
    assert "basic_motions_sensor (accuracy)" in estimates["columns"]
    cell = estimates["rows"][0]["digits_images (accuracy)"]
    assert cell["low"] <= cell["value"] <= cell["high"]
    against = {(row["method"], row["against"]) for row in paired["rows"]}
    assert against == {("rq", "random"), ("emix", "random"), ("rq", "emix")}
    assert {row["verdict"] for row in paired["rows"]} <= {"better", "worse", "no clear difference"}
    table = (run / "results.md").read_text()
    assert "| random |" in table and "| emix |" in table and "verdict" in table
    with np.load(run / "digits_images" / "rq" / "transfer" / "predictions.npz") as saved:
        assert saved["outputs"].shape[:2] == (1, len(saved["labels"]))  # per seed, per item
    capsys.readouterr()
    main(argv)  # finished stages are reused, not run again
    assert capsys.readouterr().out.count("reused") == 9
    main([*argv, "optim.lr=0.002"])  # other settings: every stage is redone
    out = capsys.readouterr().out
    assert out.count("settings changed (optim.lr)") == 9 and "reused" not in out
    # ... and the results made with the old settings are kept beside, not deleted
    kept = list((run / "digits_images").glob("rq.superseded-*"))
    assert len(kept) == 1 and (kept[0] / "transfer" / "stage.json").is_file()
    main([*argv, "optim.lr=0.002", "trainer.max_steps=3"])  # a longer budget extends the runs
    out = capsys.readouterr().out
    # the random-init rows do not depend on the steps: reused; the others' transfers are
    # redone on the continued encoders (their pretrainings are not moved aside)
    assert out.count("reused") == 3 and out.count("settings changed (budget.max_steps)") == 6
    assert len(list((run / "digits_images").glob("rq.superseded-*"))) == 1
    ckpt = torch.load(
        run / "digits_images" / "rq" / "checkpoints" / "last.ckpt",
        map_location="cpu",
        weights_only=False,
    )
    assert ckpt["global_step"] == 3  # continued from step 2, not restarted
    main([*argv, "optim.lr=0.002", "trainer.max_steps=3", "force=true"])  # redo everything
    out = capsys.readouterr().out
    assert out.count("redo requested (force)") == 9 and "reused" not in out


def test_demo_fails_naming_a_missing_asset_before_training(tmp_path, monkeypatch):
    """Issue 13: when BasicMotions could not be fetched the demo printed one line, skipped the
    domain and reported the rest. Now it stops before any training, naming the missing file
    and the command that fetches it."""
    monkeypatch.setenv("RQ_ASSETS", str(tmp_path / "no-assets"))
    run = tmp_path / "demo"
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "demo",
                "--config",
                str(CONFIGS / "demo_quick.yaml"),
                f"run_dir={run}",
                f"data_root={tmp_path / 'data'}",
                "demo.domains=[synthetic_markov_text,basic_motions_sensor]",
            ]
        )
    message = str(exit_.value.code)
    assert message.startswith(
        "rq-dabs demo: domain 'basic_motions_sensor' cannot be built: missing asset "
    )
    assert "BasicMotions_TRAIN.ts" in message and "`rq-dabs fetch-assets`" in message
    assert "\n" not in message
    assert not (run / "synthetic_markov_text").exists()  # nothing was trained
    assert not (run / "results.json").exists()


def test_fetch_assets_refuses_a_wheel_with_the_wrong_sha256(tmp_path):
    import zipfile

    from rq_dabs.data.assets import AEON_WHEEL

    fake = tmp_path / AEON_WHEEL.filename
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("aeon/datasets/data/BasicMotions/BasicMotions_TRAIN.ts", "@data\n")
    with pytest.raises(SystemExit) as exit_:
        main(["fetch-assets", f"assets={tmp_path / 'assets'}", f"wheel={fake}"])
    message = str(exit_.value.code)
    assert message.startswith("rq-dabs fetch-assets: ") and "\n" not in message
    assert f"does not match the expected {AEON_WHEEL.sha256}" in message
    assert not (tmp_path / "assets" / "basic_motions").exists()


@pytest.mark.ddp
def test_pretraining_under_two_process_cpu_ddp(tmp_path, tiny):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    import socket

    with socket.socket() as sock:  # a free port: other test runs may hold a fixed one
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        "-m",
        "rq_dabs_app.cli",
        "pretrain",
        "domain=synthetic_markov_text",
        "algorithm=rq",
        *tiny,
        f"run_dir={run}",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.max_steps=2",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2
    assert (run / "checkpoints" / "encoder.pt").is_file()
    assert "train/loss" in (run / "metrics.csv").read_text()


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("paper*.yaml")))
def test_paper_configs_keep_the_paper_sizes(name):
    from rq_core.config import load_config
    from rq_dabs.data.catalog import DOMAINS
    from rq_dabs_app.config import DabsAppConfig

    cfg = load_config(DabsAppConfig, CONFIGS / name)
    assert cfg.domain in DOMAINS and not DOMAINS[cfg.domain].embedded
    assert (
        cfg.model.depth,
        cfg.model.heads,
        cfg.model.dim_head,
        cfg.model.dim,
        cfg.model.mlp_dim,
    ) == (12, 8, 64, 256, 512)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.trainer.max_steps) == (1e-4, 1e-4, 100_000)
    assert cfg.rq.num_bins == 8 and not cfg.rq.straight_through


def test_pretrain_reuses_a_finished_run_and_refuses_one_made_with_other_settings(
    tmp_path, tiny, capsys
):
    run = tmp_path / "pre"
    argv = ["pretrain", "domain=synthetic_markov_text", "algorithm=rq", *tiny, f"run_dir={run}"]
    main(argv)
    encoder = run / "checkpoints" / "encoder.pt"
    made = encoder.stat().st_mtime_ns
    main(argv)  # finished with these settings: nothing is trained again
    assert encoder.stat().st_mtime_ns == made
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # one line naming the changed key, exit 2
        main([*argv, "rq.num_bins=4"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "settings changed (rq.num_bins)" in err
    assert encoder.stat().st_mtime_ns == made  # the old run is untouched
    main([*argv, "rq.num_bins=4", "force=true"])  # force: the old run is moved aside, kept
    kept = list(tmp_path.glob("pre.superseded-*"))
    assert len(kept) == 1 and (kept[0] / "checkpoints" / "encoder.pt").is_file()
    assert encoder.is_file()


def test_demo_and_readme_commands_resolve_to_the_same_methods():
    """Issue 15: `rq` in the demo is the paper's preset (8 bins, random spacing and
    collapse), the one `rq-dabs pretrain --algorithm rq` (README) builds; the demo changes
    only the budget and model size, as visible overrides, never the method's options."""
    from rq_core.config import load_config
    from rq_dabs.algorithms import canonical_name
    from rq_dabs_app.commands import _algorithm
    from rq_dabs_app.config import DabsAppConfig, EMixOptions, RQOptions

    demo = load_config(DabsAppConfig, CONFIGS / "demo.yaml")
    readme = load_config(DabsAppConfig, CONFIGS / "paper.yaml", ["algorithm=rq"])
    for method, preset in (("rq", RQOptions()), ("emix", EMixOptions())):
        assert demo[method] == readme[method] == OmegaConf.structured(preset)
        built = [vars(_algorithm(cfg, method)) for cfg in (demo, readme)]
        options = [{k: v for k, v in b.items() if not k.startswith("_")} for b in built]
        assert options[0] == options[1] and len(options[0]) > 2
    assert vars(_algorithm(demo, "rq"))["num_bins"] == 8
    # table rows are method names; random init is `random` (`none` still accepted)
    assert [canonical_name(a) for a in demo.demo.algorithms] == ["rq", "emix", "random"]
    assert canonical_name("none") == "random"


def test_sweep_runs_two_points_with_bands_and_reuses_them(tmp_path, data_root, capsys):
    """Issue 15: `rq-dabs sweep` pretrains RQ and transfers once per point of
    sweep.bins x sweep.spacing x sweep.collapse; random init and e-Mix are bands; a second
    call reuses every finished point."""
    run = tmp_path / "sweep"
    argv = ["sweep", "--config", str(CONFIGS / "demo_quick.yaml"), f"run_dir={run}",
            f"data_root={data_root}", "demo.domains=[basic_motions_sensor]", "sweep.bins=[2,8]",
            "trainer.max_steps=2", "threads=1"]  # fmt: skip
    main(argv)
    table = json.loads((run / "results.json").read_text())["tables"][0]
    assert [row["bins"] for row in table["rows"]] == [2, 8, "random", "emix"]
    cell = table["rows"][0]["basic_motions_sensor (accuracy)"]
    assert cell["low"] <= cell["value"] <= cell["high"]
    assert (run / "sweep.png").stat().st_size > 0
    point = run / "sweep" / "bins-2-random-random" / "basic_motions_sensor"
    assert OmegaConf.load(point / "config.yaml").rq.num_bins == 2  # the point reached RQ
    capsys.readouterr()
    main(argv)
    out = capsys.readouterr().out
    assert out.count("reused") >= 2 and "running" not in out
    with pytest.raises(SystemExit, match="sweep.spacing: 'even'"):
        main([*argv, "sweep.spacing=[even]"])
