import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq_mid_net.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[3]


def test_prepare_pretrain_classify_segment(tmp_path, tiny_overrides):
    run = tmp_path / "run"
    main(["prepare", "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides])
    assert len(list((tmp_path / "cache" / "points").glob("procedural-*.h5"))) == 1
    main(["pretrain", "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides, f"run_dir={run}"])
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/shape_loss", "train/point_loss", "train/loss_epoch"} <= set(header)
    for command in ("classify", "segment"):
        out = tmp_path / command
        main(
            [
                command,
                "--config",
                str(CONFIGS / "demo.yaml"),
                *tiny_overrides,
                f"run_dir={out}",
                f"pretrained={run / 'checkpoints' / 'last.ckpt'}",
            ]
        )
        results = json.loads((out / "results.json").read_text())
        assert (out / "results.md").is_file() and (out / "config.yaml").is_file()
        assert (out / "results.csv").read_text().startswith("method,task,ratio,metric,value")
        # Issue 15: the row is the method (the checkpoint's run config says rq), never the
        # checkpoint's file name; each cell is a mean with its 95% interval.
        markdown = (out / "results.md").read_text()
        assert "| rq |" in markdown and "last.ckpt" not in markdown
        (estimates,) = results["tables"]
        assert [row["method"] for row in estimates["rows"]] == ["rq"]
        if command == "classify":
            assert set(results["classify"]["linear"]) == {"0.5", "1.0"}
            assert 0 <= results["classify"]["linear"]["1.0"]["accuracy_mean"] <= 100
            cell = estimates["rows"][0]["cls lin 100%"]
        else:
            r = results["segment"]["1.0"]
            assert 0 < r["instance_miou_mean"] <= 100 and 0 < r["class_miou_mean"] <= 100
            num_test = r["num_test_shapes"]
            assert len(r["shape_iou_per_seed"][0]) == len(r["test_class_ids"]) == num_test
            cell = estimates["rows"][0]["seg 100% C.mIoU"]
        assert cell["low"] <= cell["value"] <= cell["high"]


def test_bad_override_names_the_key(tmp_path, tiny_overrides, capsys):
    with pytest.raises(SystemExit) as err:
        main(["pretrain", "--config", str(CONFIGS / "demo.yaml"), "optim.batch_size=many"])
    assert err.value.code == 2
    assert "optim.batch_size" in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(tmp_path, tiny_overrides, capsys):
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "classify",
                "--config",
                str(CONFIGS / "demo.yaml"),
                *tiny_overrides,
                f"run_dir={tmp_path / 'x'}",
            ]
        )
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and "rq-mid-net pretrain" in message[0], message


@pytest.mark.ddp
def test_pretraining_under_two_process_cpu_ddp(tmp_path, tiny_overrides):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29517",
        "-m",
        "rq_mid_net.cli",
        "pretrain",
        "--config",
        str(CONFIGS / "demo.yaml"),
        *tiny_overrides,
        f"run_dir={run}",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.sync_batchnorm=false",
    ]  # torch: SyncBatchNorm only works with GPU modules
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    import torch

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # 12 training shapes, batch 4 per process, 2 processes: 1 step per epoch on each rank.
    assert ckpt["global_step"] == 1
    assert ckpt["state_dict"]["loss.shape.bank.bank"].shape == (12, 8)


@pytest.mark.slow
def test_demo_quick_end_to_end_and_reuse(tmp_path, monkeypatch):
    monkeypatch.setenv("RQ_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "demo"
    main(["demo", "--config", str(CONFIGS / "demo_quick.yaml"), f"run_dir={run}"])
    results = json.loads((run / "results.json").read_text())
    assert set(results["results"]) == {"random", "midfc", "rq"}
    assert "| rq |" in (run / "results.md").read_text()
    estimates, paired = results["tables"]
    assert [row["method"] for row in estimates["rows"]] == ["random", "midfc", "rq"]
    pairs = {(row["method"], row["against"]) for row in paired["rows"]}
    assert {("rq", "random"), ("rq", "midfc"), ("midfc", "random")} <= pairs
    assert {row["verdict"] for row in paired["rows"]} <= {"better", "worse", "no clear difference"}
    t0 = time.time()
    main(
        ["demo", "--config", str(CONFIGS / "demo_quick.yaml"), f"run_dir={run}"]
    )  # reuses every stage
    assert time.time() - t0 < 20
    # force=true redoes every stage (pretrainings and evaluations); the old ones are kept.
    main(["demo", "--config", str(CONFIGS / "demo_quick.yaml"), f"run_dir={run}", "force=true"])
    aside = sorted(p.name.split(".superseded-")[0] for p in run.glob("*.superseded-*"))
    assert aside == ["eval_midfc", "eval_random", "eval_rq", "pretrain_midfc", "pretrain_rq"]


def test_pretrain_refuses_a_run_dir_made_with_other_settings_and_force_redoes_it(
    tmp_path, tiny_overrides, capsys
):
    run = tmp_path / "run"
    args = ["pretrain", "--config", str(CONFIGS / "demo.yaml"), *tiny_overrides, f"run_dir={run}"]
    main(args)
    record = json.loads((run / "stage.json").read_text())
    assert record["finished"] and record["settings"]["optim"]["lr"] == 0.03
    main(args)  # finished with the same settings: reused, not trained again
    assert "reused" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main([*args, "optim.lr=0.1"])
    assert err.value.code == 2
    assert "optim.lr" in capsys.readouterr().err
    main([*args, "optim.lr=0.1", "force=true"])  # redone; the old run is kept beside it
    assert json.loads((run / "stage.json").read_text())["settings"]["optim"]["lr"] == 0.1
    (aside,) = tmp_path.glob("run.superseded-*")
    assert (aside / "checkpoints" / "last.ckpt").is_file()


def test_demo_and_readme_commands_resolve_to_the_same_augmentation_chains():
    """Issue 15: `method=` picks the chain. The README's paper commands (shapenet_paper.yaml,
    shapenet_midfc.yaml) and the demo's rq / midfc pretrainings use the same chains; an
    explicit augmentation key tunes the rq chain; a contradiction is one clear error."""
    from rq_core.config import ConfigError, load_config
    from rq_mid_net.commands import demo_variant_config, method_augmentation
    from rq_mid_net.config import MidNetAppConfig

    def chain(name, *overrides):
        return method_augmentation(load_config(MidNetAppConfig, CONFIGS / name, list(overrides)))

    demo = load_config(MidNetAppConfig, CONFIGS / "demo.yaml", [])
    assert method_augmentation(demo_variant_config(demo, "rq")) == chain("shapenet_paper.yaml")
    assert method_augmentation(demo_variant_config(demo, "midfc")) == chain("shapenet_midfc.yaml")
    paper = chain("shapenet_paper.yaml")
    assert (paper.rq_bins, paper.rq_spacing, paper.rq_collapse) == (30, "random", "random")
    assert chain("shapenet_midfc.yaml").rq_bins == 0
    assert chain("shapenet_paper.yaml", "method=midfc").rq_bins == 0
    assert chain("shapenet_paper.yaml", "augmentation.rq_bins=16").rq_bins == 16
    with pytest.raises(ConfigError, match="method=rq with augmentation.rq_bins=0"):
        chain("shapenet_paper.yaml", "augmentation.rq_bins=0")
    with pytest.raises(ConfigError, match="method must be one of rq|midfc"):
        chain("shapenet_paper.yaml", "method=mixup")


@pytest.mark.slow
def test_a_tiny_sweep_runs_two_points_and_reuses_them(tmp_path, tiny_overrides, capsys):
    """Issue 15.4: one pretraining + probes per quantizer setting, random init and MID-FC as
    bands, a table with intervals and a plot; a second call reuses every finished point."""
    run = tmp_path / "sweep"
    args = [
        "sweep",
        "--config",
        str(CONFIGS / "demo.yaml"),
        *tiny_overrides,
        f"run_dir={run}",
        "sweep.bins=[2,8]",
        "sweep.spacing=[uniform]",
        "sweep.collapse=[middle]",
    ]
    main(args)
    results = json.loads((run / "sweep" / "results.json").read_text())
    (table,) = results["tables"]
    assert [(r["bins"], r["spacing"], r["collapse"]) for r in table["rows"]] == [
        (2, "uniform", "middle"),
        (8, "uniform", "middle"),
        ("random", "", ""),
        ("midfc", "", ""),
    ]
    cell = table["rows"][0]["cls lin 100%"]
    assert cell["low"] <= cell["value"] <= cell["high"]
    assert (run / "sweep" / "sweep.png").stat().st_size > 0
    assert (run / "eval_random" / "stage.json").is_file()  # the references: the demo's stages
    pretrained = json.loads(
        (run / "sweep" / "sweep" / "bins-8-uniform-middle" / "pretrain" / "stage.json").read_text()
    )
    augmentation = pretrained["settings"]["augmentation"]
    assert (augmentation["rq_bins"], augmentation["rq_spacing"], augmentation["rq_collapse"]) == (
        8,
        "uniform",
        "middle",
    )
    capsys.readouterr()
    main(args)
    out = capsys.readouterr().out
    assert "bins-2-uniform-middle: reused" in out and "bins-8-uniform-middle: reused" in out
    assert "running" not in out
    (again,) = json.loads((run / "sweep" / "results.json").read_text())["tables"]
    assert again["rows"] == table["rows"] and set(again["columns"]) == set(table["columns"])


def test_own_folder_with_metadata_beside_it_is_read_once_for_pretraining_and_probes(
    tmp_path, tiny_overrides, capsys
):
    """Issue 15 section 3, through the command line: shapes/*.npz with metadata.csv beside
    shapes/ (file_name relative to shapes/), `data` and `classify_data` on that folder: one
    cache, built once; the probe row is `random`."""
    import numpy as np
    from rq_points.data.procedural import CLASSES, generate_shapes
    from rq_points.data.sources import split_of

    (tmp_path / "shapes").mkdir()
    rows = []
    for i, s in enumerate(generate_shapes(6, 256)):
        np.savez(tmp_path / "shapes" / f"s{i}.npz", points=s.shape.points, normals=s.shape.normals)
        rows.append(f"s{i}.npz,{CLASSES[s.class_id]},{split_of(i % 6)}")
    (tmp_path / "metadata.csv").write_text("file_name,label,split\n" + "\n".join(rows) + "\n")
    folder = [
        "data.source=folder",
        f"data.root={tmp_path / 'shapes'}",
        f"data.metadata={tmp_path / 'metadata.csv'}",
    ]
    # The folder keys first: TINY's `classify_data.splits=...` after `classify_data=${data}`
    # makes classify_data a copy of data as it is at that point.
    common = ["--config", str(CONFIGS / "demo.yaml"), *folder, *tiny_overrides]
    main(["prepare", *common])
    out = capsys.readouterr().out
    assert out.count("shapes of 6 classes written") == 1  # read once for the three sets
    assert len(list((tmp_path / "cache" / "points").glob("folder-*.h5"))) == 1
    run = tmp_path / "probe"
    main(["classify", *common, f"run_dir={run}", "pretrained=random"])
    (estimates,) = json.loads((run / "results.json").read_text())["tables"]
    assert [row["method"] for row in estimates["rows"]] == ["random"]
