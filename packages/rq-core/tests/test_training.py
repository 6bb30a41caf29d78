"""rq_core.training: checkpoints, kill-and-resume, logs, config saving (CPU, subprocesses)."""

import csv
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from rq_core.config import ConfigError, cli_main
from rq_core.training import (
    AtomicCheckpointIO,
    MetricsCSVLogger,
    ResumableSampler,
    SeededIndex,
    TrainerConfig,
    build_trainer,
    fit,
    load_checkpoint,
    resolve_resume,
    resumable_loader,
    sample_seed,
    to_weights_only,
)

TOY = Path(__file__).with_name("toy_training.py")
sys.path.insert(0, str(TOY.parent))  # toy_training, imported by some tests


def _run_toy(run_dir: Path, *overrides: str) -> str:
    """Run the toy training to its end; return its stderr."""
    result = subprocess.run(
        [sys.executable, str(TOY), str(run_dir), *overrides],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stderr


def _assert_same_run(run_dir: Path, reference: Path) -> None:
    """Final weights bitwise equal and the same metrics.csv (steps and values)."""
    expected = torch.load(reference / "final_weights.pt", weights_only=True)
    resumed = torch.load(run_dir / "final_weights.pt", weights_only=True)
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    assert (run_dir / "metrics.csv").read_text() == (reference / "metrics.csv").read_text()


def _run_toy_until_killed(run_dir: Path, block_at_step: int, *overrides: str) -> None:
    """Start the toy run, wait until it reports step ``block_at_step``, SIGKILL it."""
    process = subprocess.Popen(
        [sys.executable, str(TOY), str(run_dir), f"block_at_step={block_at_step}", *overrides],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    marker = run_dir / "reached_step"
    deadline = time.monotonic() + 300
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(
                f"toy run ended before step {block_at_step}: {process.stderr.read()[-4000:]}"
            )
        assert time.monotonic() < deadline, "toy run never reached the kill step"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    process.stderr.close()


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    _run_toy(run_dir)
    return run_dir


@pytest.mark.parametrize(
    ("kill_at_step", "checkpoint_step", "overrides"),
    [
        # 8 batches per epoch, checkpoints every 3 steps and at epoch ends by default.
        (13, 12, ()),  # after the step-12 checkpoint, in the middle of epoch 1
        (17, 16, ()),  # after the epoch-1 end checkpoint, before the next step checkpoint
        # every 4 steps: step 8 is an epoch's last batch, killed before its epoch-end save
        (8, 4, ("trainer.checkpoint_every_n_steps=4",)),
        # The same 24 steps counted by max_steps (Lightning's iteration-based loop, as the
        # apps' quick configs use): it resumed an epoch-end checkpoint one batch too far.
        (13, 12, ("trainer.max_epochs=null", "trainer.max_steps=24")),
        (17, 16, ("trainer.max_epochs=null", "trainer.max_steps=24")),
    ],
)
def test_sigkill_then_resume_auto_gives_the_uninterrupted_weights(
    uninterrupted_run, tmp_path, kill_at_step, checkpoint_step, overrides
):
    # Checkpointing draws no random numbers, so its schedule does not change the result.
    _run_toy_until_killed(tmp_path, kill_at_step, *overrides)
    assert not (tmp_path / "final_weights.pt").exists()
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == checkpoint_step
    _run_toy(tmp_path, *overrides)  # trainer.resume defaults to "auto"
    # The metrics file reads as one run: same rows as the uninterrupted one.
    _assert_same_run(tmp_path, uninterrupted_run)


def test_a_larger_max_steps_finishes_the_epoch_that_max_steps_cut_short(
    uninterrupted_run, tmp_path
):
    # 12 steps end in the middle of the second epoch; the extended run must train the rest
    # of that epoch, not skip to the third.
    _run_toy(tmp_path, "trainer.max_epochs=null", "trainer.max_steps=12")
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 12
    _run_toy(tmp_path, "trainer.max_epochs=null", "trainer.max_steps=24")
    # Same batches and losses at every step, and the same online network. (The EMA copy
    # differs by design: its cosine momentum schedule spans max_steps, 12 steps long in
    # the first run.)
    assert (tmp_path / "metrics.csv").read_text() == (uninterrupted_run / "metrics.csv").read_text()
    expected = torch.load(uninterrupted_run / "final_weights.pt", weights_only=True)
    extended = torch.load(tmp_path / "final_weights.pt", weights_only=True)
    online = [name for name in expected if name.startswith("net.")]
    assert len(online) == 9
    for name in online:
        assert torch.equal(expected[name], extended[name]), name


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":  # a copy cut short, a full disk
        path.write_bytes(data[: len(data) // 2])
    else:  # bit rot, a file overwritten by something else
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_last_checkpoint_resumes_from_previous_with_a_warning(
    uninterrupted_run, tmp_path, damage
):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted_run, run_dir)
    (run_dir / "final_weights.pt").unlink()
    checkpoints = run_dir / "checkpoints"
    # Saves every 3 steps and at epoch ends: the one before the final step-24 save is 21.
    assert load_checkpoint(checkpoints / "previous.ckpt")["global_step"] == 21
    _damage(checkpoints / "last.ckpt", damage)
    stray = checkpoints / ".last.ckpt.k1ll3d.tmp"  # what a kill during a write leaves
    stray.write_bytes(b"PK\x03\x04 half of a checkpoint")

    stderr = _run_toy(run_dir)  # the same command again: trainer.resume=auto

    warning = " ".join(stderr.split())
    assert f"{checkpoints / 'last.ckpt'} does not load" in warning, stderr[-3000:]
    assert f"resuming from {checkpoints / 'previous.ckpt'} (step 21)" in warning
    _assert_same_run(run_dir, uninterrupted_run)  # steps 21-24 trained again, exactly
    assert not stray.exists(), "stray temporary files are removed on the next start"
    assert load_checkpoint(checkpoints / "last.ckpt")["global_step"] == 24
    # The damaged file was not kept as previous.ckpt: the step-21 checkpoint still is.
    assert load_checkpoint(checkpoints / "previous.ckpt")["global_step"] == 21


def test_run_directory_layout_and_checkpoint_contents(uninterrupted_run):
    run_dir = uninterrupted_run
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    # Saved after the third epoch ended: "epoch" counts the epochs completed.
    assert checkpoint["global_step"] == 24 and checkpoint["epoch"] == 3
    assert load_checkpoint(run_dir / "checkpoints" / "previous.ckpt")["global_step"] == 21
    for key in (
        "state_dict",
        "optimizer_states",
        "lr_schedulers",
        "loops",
        "rng_states",
        "config",
        "model_ema",
    ):
        assert key in checkpoint, key
    online_keys = {k[len("net.") :] for k in checkpoint["state_dict"] if k.startswith("net.")}
    assert set(checkpoint["model_ema"]) == online_keys and "1.running_mean" in online_keys
    ema, online = checkpoint["model_ema"]["0.weight"], checkpoint["state_dict"]["net.0.weight"]
    assert torch.equal(ema, checkpoint["state_dict"]["model_ema.0.weight"])
    assert not torch.equal(ema, online), "the EMA copy lags the online weights"
    assert checkpoint["optimizer_states"][0]["state"], "SGD momentum buffers are saved"
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == 24
    assert len(checkpoint["rng_states"]) == 1 and {"python", "numpy", "torch"} <= set(
        checkpoint["rng_states"][0]
    )
    assert checkpoint["config"]["trainer"]["checkpoint_every_n_steps"] == 3
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.trainer.max_epochs == 3 and saved.batch_size == 8
    with (run_dir / "metrics.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [int(row["step"]) for row in rows] == list(range(24))
    assert all(float(row["train/loss"]) >= 0 for row in rows)
    assert not list(run_dir.glob("**/version_*")), "no Lightning version directories"
    assert not list((run_dir / "checkpoints").glob("*.tmp")), "no leftover temporary files"


_KILL_DURING_SAVE = textwrap.dedent(
    """
    import os, sys, time, torch
    from pathlib import Path
    import rq_core.training.checkpoint_io as checkpoint_io

    target, marker = Path(sys.argv[1]), Path(sys.argv[2])
    io = checkpoint_io.AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "state_dict": {"w": torch.ones(3)}}, target)

    def save_half_then_hang(obj, stream):
        stream.write(b"PK\\x03\\x04 half of a checkpoint")
        stream.flush()
        os.fsync(stream.fileno())
        marker.write_text("writing")
        while True:
            time.sleep(0.1)

    checkpoint_io.torch.save = save_half_then_hang
    io.save_checkpoint({"global_step": 2, "state_dict": {"w": torch.zeros(3)}}, target)
    """
)


def test_kill_during_checkpoint_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    target, marker = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "writing"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILL_DURING_SAVE, str(target), str(marker)], stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stderr.close()
    partial = list(target.parent.glob(".last.ckpt.*.tmp"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0, "the kill hit the second write"
    checkpoint = load_checkpoint(target)
    assert checkpoint["global_step"] == 1
    assert torch.equal(checkpoint["state_dict"]["w"], torch.ones(3))


def test_atomic_io_round_trip_and_weights_only_conversion(tmp_path):
    io = AtomicCheckpointIO()
    payload = {
        "config": OmegaConf.create({"lr": 0.1, "dirs": [Path("/a")]}),
        "array": np.arange(3),
        "scalar": np.float64(2.5),
        "path": Path("/runs/x"),
    }
    io.save_checkpoint(payload, tmp_path / "c.ckpt")
    loaded = torch.load(tmp_path / "c.ckpt", weights_only=True)
    assert loaded["config"] == {"lr": 0.1, "dirs": ["/a"]}
    assert torch.equal(loaded["array"], torch.arange(3))
    assert loaded["scalar"] == 2.5 and loaded["path"] == "/runs/x"
    assert os.stat(tmp_path / "c.ckpt").st_mode & 0o044, "readable like a normal file"
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        io.load_checkpoint(tmp_path / "missing.ckpt")


def test_to_weights_only_replaces_unknown_objects_with_their_repr_and_warns():
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = to_weights_only({"hparams": {"thing": Opaque()}})
    assert converted == {"hparams": {"thing": "Opaque()"}}
    assert any("['hparams']['thing']" in str(w.message) for w in caught)


def test_metrics_csv_is_flat_widens_its_header_and_truncates_on_resume(tmp_path):
    logger = MetricsCSVLogger(tmp_path)
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.log_metrics({"loss": 0.5}, step=1)
    logger.log_metrics({"loss": 0.25, "val/acc": torch.tensor(0.75)}, step=2)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["val/acc"] == "" and rows[2]["val/acc"] == "0.75"
    resumed = MetricsCSVLogger(tmp_path, resume_step=2)  # checkpoint after 2 optimizer steps
    resumed.log_metrics({"loss": 0.3}, step=2)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["step"], r["loss"]) for r in rows] == [("0", "1.0"), ("1", "0.5"), ("2", "0.3")]


def test_resumable_sampler_skips_partitions_and_reshuffles_per_epoch():
    data = range(10)
    sampler = ResumableSampler(data, seed=0)
    sampler.set_epoch(1)
    full = list(sampler)
    assert sorted(full) == list(range(10))
    sampler.skip_next(4)
    assert list(sampler) == full[4:]
    assert list(sampler) == full, "the skip applies to one iteration only"
    sampler.set_epoch(2)
    assert list(sampler) != full
    ranks = [list(ResumableSampler(data, seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == list(range(10)) and len(ranks[0]) == 5


def test_resumable_sampler_seeds_each_sample_by_seed_epoch_and_index():
    sampler = ResumableSampler(range(10), seed=3, sample_seeds=True)
    sampler.set_epoch(1)
    keys = list(sampler)
    assert all(isinstance(key, SeededIndex) for key in keys)
    plain = ResumableSampler(range(10), seed=3)
    plain.set_epoch(1)
    assert [key.index for key in keys] == list(plain), "the same order as without seeds"
    assert [key.seed for key in keys] == [sample_seed(3, 1, key.index) for key in keys]
    assert len({key.seed for key in keys}) == 10
    sampler.skip_next(6)
    assert list(sampler) == keys[6:], "a resumed epoch continues with the same seeds"
    sampler.set_epoch(2)
    assert {key.seed for key in sampler}.isdisjoint({key.seed for key in keys})


def test_resumable_loader_draws_its_order_from_a_resumable_sampler():
    loader = resumable_loader(list(range(12)), 4, seed=1, num_workers=0)
    assert isinstance(loader.sampler, ResumableSampler) and loader.drop_last
    order = [i for batch in loader for i in batch.tolist()]
    loader.sampler.skip_next(4)
    assert [i for batch in loader for i in batch.tolist()] == order[4:]


def test_resumable_sampler_follows_a_world_that_appears_after_construction(monkeypatch):
    for variable in ("WORLD_SIZE", "RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(variable, raising=False)
    sampler = ResumableSampler(range(10), shuffle=False)
    assert len(sampler) == 10
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert len(sampler) == 5 and list(sampler) == [1, 3, 5, 7, 9]
    fixed = ResumableSampler(range(10), shuffle=False, num_replicas=1, rank=0)
    assert len(fixed) == 10


def test_a_fresh_run_does_not_keep_an_earlier_runs_checkpoint_as_previous(
    uninterrupted_run, tmp_path
):
    # A fallback to previous.ckpt must never land in another run's history.
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted_run, run_dir)
    _run_toy(run_dir, "trainer.resume=never", "trainer.max_epochs=null", "trainer.max_steps=2")
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 2
    assert not (run_dir / "checkpoints" / "previous.ckpt").exists()


def test_resolve_resume(tmp_path):
    assert resolve_resume("auto", tmp_path) is None
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save({"global_step": 5}, checkpoints / "last.ckpt")
    assert resolve_resume("auto", tmp_path) == checkpoints / "last.ckpt"
    assert resolve_resume("never", tmp_path) is None
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        resolve_resume(str(tmp_path / "nope.ckpt"), tmp_path)
    torch.save({"global_step": 3}, checkpoints / "previous.ckpt")
    (checkpoints / "last.ckpt").unlink()  # e.g. deleted by hand
    with pytest.warns(UserWarning, match="last.ckpt does not exist: resuming from"):
        assert resolve_resume("auto", tmp_path) == checkpoints / "previous.ckpt"
    (checkpoints / "last.ckpt").write_bytes(b"garbage")
    assert resolve_resume("auto", tmp_path, check=False) == checkpoints / "last.ckpt"


def _damaged_run_dir(tmp_path: Path) -> Path:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save({"global_step": 5, "w": torch.ones(100)}, checkpoints / "last.ckpt")
    torch.save({"global_step": 4, "w": torch.ones(100)}, checkpoints / "previous.ckpt")
    _damage(checkpoints / "last.ckpt", "truncated")
    _damage(checkpoints / "previous.ckpt", "garbage")
    return checkpoints


def test_when_no_checkpoint_loads_resume_stops_with_one_line_naming_both(tmp_path):
    checkpoints = _damaged_run_dir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        resolve_resume("auto", tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert f"{checkpoints / 'last.ckpt'} does not load (" in message
    assert f"{checkpoints / 'previous.ckpt'} does not load (" in message
    assert "trainer.resume=never" in message
    with pytest.raises(ConfigError, match="the checkpoint does not load"):
        resolve_resume(str(checkpoints / "last.ckpt"), tmp_path)


def test_the_cli_prints_a_config_error_of_a_command_as_one_line(tmp_path, capsys):
    _damaged_run_dir(tmp_path)

    @dataclasses.dataclass
    class Train:
        run_dir: str = str(tmp_path)
        resume: str = "auto"

    with pytest.raises(SystemExit) as exited:
        cli_main(
            {"train": lambda cfg: resolve_resume(cfg.resume, cfg.run_dir)},
            {"train": Train},
            {"train": None},
            argv=["train"],
            prog="rq-test",
        )
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rq-test train: error: trainer.resume=auto")
    assert "trainer.resume=never" in lines[0]


def test_fit_refuses_a_training_loader_that_cannot_resume_mid_epoch(tmp_path):
    import toy_training

    dataset = toy_training.toy_loader(16, 8).dataset
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True)
    config = TrainerConfig(
        max_steps=1, accelerator="cpu", devices="1", progress_bar=False, tensorboard=False
    )
    with pytest.raises(ValueError, match="RandomSampler, not rq_core.training.ResumableSampler"):
        fit(toy_training.ToyModule(), tmp_path, config, train_dataloaders=loader)
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_build_trainer_accepts_the_documented_precisions(tmp_path, precision):
    cfg = TrainerConfig(
        max_steps=1, accelerator="cpu", devices="1", precision=precision, tensorboard=True
    )
    trainer = build_trainer(cfg, tmp_path)
    # On CPU Lightning runs fp16 autocast as bf16 (it warns); on a GPU it stays 16-mixed.
    expected = "bf16-mixed" if precision == "16-mixed" else precision
    assert trainer.max_steps == 1 and trainer.precision == expected
    assert any(type(cb).__name__ == "RunCheckpoint" for cb in trainer.callbacks)


def test_build_trainer_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        build_trainer(TrainerConfig(precision="8-bit"), tmp_path)
    with pytest.raises(ValueError, match="devices"):
        build_trainer(TrainerConfig(devices="many", accelerator="cpu"), tmp_path)
    with pytest.raises(ValueError, match="unknown trainer config keys"):
        build_trainer({"max_stepz": 3}, tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_mixed_on_gpu_saves_the_grad_scaler_and_resumes(tmp_path):
    gpu = ("trainer.accelerator=gpu", "trainer.devices=1", "trainer.precision=16-mixed")
    reference = tmp_path / "reference"
    _run_toy(reference, *gpu)
    checkpoint = load_checkpoint(reference / "checkpoints" / "last.ckpt")
    scaler_states = [v for k, v in checkpoint.items() if "MixedPrecision" in k]
    assert scaler_states and "scale" in scaler_states[0], sorted(checkpoint)
    assert "cuda" in checkpoint["rng_states"][0]
    killed = tmp_path / "killed"
    _run_toy_until_killed(killed, 13, *gpu)
    _run_toy(killed, *gpu)
    expected = torch.load(reference / "final_weights.pt", weights_only=True)
    resumed = torch.load(killed / "final_weights.pt", weights_only=True)
    for name in expected:
        # deterministic=True in the toy config; fp16 kernels on one GPU repeat exactly.
        assert torch.equal(expected[name], resumed[name]), name
