"""The steps of the GPU acceptance run; ``scripts/gpu_acceptance.sh OUTDIR`` runs them.

    python scripts/gpu/acceptance.py OUTDIR             # on a GPU machine (after the install)
    python scripts/gpu/acceptance.py OUTDIR --dry-run   # the same on CPU, tiny, in one process

Steps, in two phases:

1. what must work (run side by side, each in its own process): ``tests`` (``pytest -m gpu``:
   every CUDA test, the Triton kernel bit for bit against the torch path), and each app's quick
   demo on the GPU through its command line (``demo-byol-a``, ``demo-mid-net``, ``demo-dabs``);
2. what it costs (one at a time, the GPU to itself): ``quantize`` (benchmarks/quantize.py),
   ``paper-<app>`` (the paper configuration's model at its batch size on synthetic batches,
   with RQ and with the app's baseline: step time, samples/s, peak GPU memory, projected
   GPU-hours) and ``pipeline-<app>`` (the configured DataLoader over a small on-disk cache).

Every step writes ``OUTDIR/results/<step>.json`` and its output to ``OUTDIR/logs/<step>.log``;
a step that fails is recorded and the others go on. ``OUTDIR/summary.md`` gathers everything;
the exit status is 1 when a step failed or did not run.

``--dry-run`` runs every step on CPU (accelerator cpu, tiny shapes, two steps a model,
TRITON_INTERPRET=1) in this one process, so the script cannot rot between GPU runs
(tests/gpu_acceptance/test_dry_run.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

# Seconds the steps may take together on the GPU (the install comes before): the run must
# end well inside the device tool's 10 minutes a command. A step gets the smaller of its own
# limit and what is left; steps that find nothing left are recorded as not run.
BUDGET_S = float(os.environ.get("RQ_GPU_BUDGET_S", "450"))


@dataclass(frozen=True)
class Variant:
    """One configuration of an app's paper-model measurement."""

    label: str
    config: str  # relative to the checkout
    overrides: tuple[str, ...] = ()
    rq: bool = True


@dataclass(frozen=True)
class App:
    name: str
    script: str  # console script
    demo_config: str
    device_keys: tuple[str, ...]  # the app's own device keys, as key=cuda (see --print-config)
    demo_dry: tuple[str, ...]  # extra overrides that make the demo tiny for the dry run
    variants: tuple[Variant, ...]
    paper_dry: tuple[str, ...]  # tiny model and batch for the dry run


APPS: dict[str, App] = {
    "byol-a": App(
        "byol-a",
        "rq-byol-a",
        "apps/byol-a/configs/demo_quick.yaml",
        ("evaluate.device",),
        (
            "demo.corpus.notes_per_family=6",
            "demo.corpus.speakers=5",
            "demo.corpus.takes_per_word=1",
            "demo.corpus.unlabeled_notes=0",
            "demo.corpus.unlabeled_words=0",
            "data.batch_size=8",
            "evaluate.probe.max_epochs=1",
            "model.feature_dim=64",
            "model.projection_hidden_dim=64",
            "model.projection_dim=32",
            "model.encoder_channels=8",
            (
                "demo.methods=[{name: rq, augmentations: "
                "[{name: rq, num_bins: 5, channel_mode: frequency}]}]"
            ),
        ),
        (
            Variant("BYOL-A + RQ (paper)", "apps/byol-a/configs/audioset_paper.yaml"),
            Variant(
                "BYOL-A + Mixup (baseline)", "apps/byol-a/configs/audioset_byola.yaml", rq=False
            ),
        ),
        (
            "model.feature_dim=64",
            "model.projection_hidden_dim=64",
            "model.projection_dim=32",
            "model.encoder_channels=8",
            "data.batch_size=4",
            "data.num_workers=0",
        ),
    ),
    "mid-net": App(
        "mid-net",
        "rq-mid-net",
        "apps/mid-net/configs/demo_quick.yaml",
        ("device",),
        (
            "data.shapes_per_class=4",
            "data.num_points=256",
            "optim.batch_size=4",
            "classify.probe_epochs=1",
            "segment.epochs=1",
            "demo_variants=[random,rq]",
        ),
        (
            Variant("MID-Net + RQ (paper)", "apps/mid-net/configs/shapenet_paper.yaml"),
            Variant(
                "MID-FC (baseline, no RQ)", "apps/mid-net/configs/shapenet_midfc.yaml", rq=False
            ),
        ),
        (
            "model.depth=4",
            "model.channels=16",
            "model.global_channels=16",
            "model.shape_dim=8",
            "model.point_dim=8",
            "model.point_hidden=8",
            "model.resblock_num=1",
            "model.stages=2",
            "optim.batch_size=2",
            "optim.num_workers=0",
        ),
    ),
    "dabs": App(
        "dabs",
        "rq-dabs",
        "apps/dabs/configs/demo_quick.yaml",
        (),  # transfer extracts features on the CPU (rq_dabs.evaluate): the trainer is all
        (
            "demo.domains=[synthetic_markov_text]",
            "demo.algorithms=[rq]",
            "transfer.epochs=1",
            "batch_size=8",
            "threads=1",
        ),
        (
            Variant("DABS transformer + RQ (paper)", "apps/dabs/configs/paper.yaml"),
            Variant(
                "DABS transformer + e-Mix (baseline)",
                "apps/dabs/configs/paper.yaml",
                ("algorithm=emix",),
                rq=False,
            ),
        ),
        (
            "model.dim=16",
            "model.depth=1",
            "model.heads=2",
            "model.dim_head=8",
            "model.mlp_dim=16",
            "model.out_dim=16",
            "batch_size=4",
            "num_workers=0",
        ),
    ),
}


@dataclass
class Context:
    outdir: Path
    dry_run: bool
    log: Path | None = None

    @property
    def accelerator(self) -> str:
        return "cpu" if self.dry_run else "gpu"

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run else "cuda"

    @property
    def cache(self) -> Path:
        return Path(os.environ.get("RQ_CACHE") or self.outdir / "cache")


@dataclass(frozen=True)
class Step:
    name: str
    phase: int
    run: Callable[[Context], dict]
    limit_s: float
    title: str


# ------------------------------------------------------------------------------ helpers


def cli(script: str, argv: list[str]) -> Any:
    """Run an app's command line in this process through its console-script entry point."""
    from importlib.metadata import entry_points

    found = entry_points(group="console_scripts", name=script)
    if not found:
        raise RuntimeError(f"console script {script!r} is not installed")
    main = next(iter(found)).load()
    try:
        return main(argv)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise RuntimeError(f"{script} {shlex.join(argv)} exited with {stop.code}") from None
        return None


def app_config(app: App, config: str, overrides: list[str]):
    """The resolved ``pretrain`` config, as the app's ``--print-config`` prints it."""
    from omegaconf import OmegaConf

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        cli(app.script, ["pretrain", "--config", str(ROOT / config), "--print-config", *overrides])
    return OmegaConf.create(text.getvalue())


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------- steps


def gpu_test_files() -> list[str]:
    """Test files holding ``gpu``-marked tests (what ``pytest -m gpu`` needs to collect)."""
    found = []
    for pattern in ("packages/*/tests/test_*.py", "apps/*/tests/test_*.py", "tests/**/test_*.py"):
        for path in sorted(ROOT.glob(pattern)):
            if "pytest.mark.gpu" in path.read_text(errors="replace"):
                found.append(str(path.relative_to(ROOT)))
    return found


def step_tests(ctx: Context) -> dict:
    """pytest -m gpu over every file with gpu tests; on a GPU nothing may skip or fail."""
    junit = ctx.outdir / "results" / "pytest.xml"
    files = gpu_test_files()
    args = [
        "-m",
        "gpu",
        "-p",
        "no:cacheprovider",
        "-rs",
        f"--junitxml={junit}",
        "--rootdir",
        str(ROOT),
        *files,
    ]
    if not ctx.dry_run:
        try:
            import xdist  # noqa: F401  (the GPU image has pytest-xdist: compile kernels in parallel)

            args = ["-n", "8", *args]
        except ImportError:
            pass
        code = subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT)
    else:
        import pytest

        code = int(pytest.main(list(args)))  # (pytest adds its ini options to the list it gets)
        _repair_log_streams()
    counts = junit_counts(junit)
    counts.update(files=files, exit_code=code, command="pytest " + shlex.join(args))
    if code not in (0, 5) or counts["failed"] or counts["errors"]:
        raise StepError(
            f"pytest exit {code}: {counts['failed']} failed, {counts['errors']} errors", counts
        )
    if counts["tests"] == 0:
        raise StepError("pytest ran no gpu test", counts)
    if not ctx.dry_run and counts["skipped"]:
        raise StepError(f"{counts['skipped']} gpu tests skipped on the GPU machine", counts)
    return counts


def _repair_log_streams() -> None:
    """Point logging handlers that pytest left writing to its closed capture streams (set up
    while it ran, e.g. when a test imported lightning) back at this process's stderr."""
    import logging

    loggers = [
        logging.getLogger(),
        *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and stream is not None and stream.closed:
                handler.stream = sys.stderr  # not setStream(): it flushes the closed stream first


def junit_counts(path: Path) -> dict:
    import xml.etree.ElementTree as ET

    if not path.is_file():
        return {
            "tests": 0,
            "failed": 0,
            "errors": 0,
            "skipped": 0,
            "skip_reasons": {},
            "failures": [],
        }
    cases = list(ET.parse(path).getroot().iter("testcase"))
    reasons: dict[str, int] = {}
    failures = []
    counts = {"tests": len(cases), "failed": 0, "errors": 0, "skipped": 0}
    for case in cases:
        for kind, key in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
            node = case.find(kind)
            if node is None:
                continue
            counts[key] += 1
            message = (node.get("message") or "").strip()
            if kind == "skipped":
                reasons[message] = reasons.get(message, 0) + 1
            else:
                failures.append(f"{case.get('classname')}::{case.get('name')}: {message[:300]}")
    return {**counts, "skip_reasons": reasons, "failures": failures}


def step_quantize(ctx: Context) -> dict:
    """benchmarks/quantize.py on the GPU: Triton kernel, dense reference and a copy per shape."""
    results = ctx.outdir / "results" / "quantize"
    argv = ["--device", ctx.device, "--results-dir", str(results)]
    argv += ["--tiny", "--repeats", "1"] if ctx.dry_run else ["--repeats", "10"]
    script = ROOT / "benchmarks" / "quantize.py"
    if ctx.dry_run:  # in this process (a second interpreter costs more than the dry run's work)
        import importlib.util

        import torch

        threads = torch.get_num_threads()
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")  # else it re-executes itself
        spec = importlib.util.spec_from_file_location("benchmark_quantize", script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        try:
            code = module.main(argv)
        finally:
            torch.set_num_threads(threads)
    else:
        code = subprocess.call([sys.executable, str(script), *argv], cwd=ROOT)
    if code != 0:
        raise StepError(f"benchmarks/quantize.py exited with {code}")
    data = json.loads((results / "results.json").read_text())
    return {**data, "command": "python benchmarks/quantize.py " + shlex.join(argv)}


def _device_overrides(ctx: Context, app: App) -> list[str]:
    out = [
        f"trainer.accelerator={ctx.accelerator}",
        "trainer.devices=1",
        "trainer.precision=bf16-mixed",
    ]
    return out + [f"{key}={ctx.device}" for key in app.device_keys]


LIGHTNING_DEVICE = re.compile(r"GPU available: (\w+)(?: \((\w+)\))?, used: (\w+)")


def step_demo(app: App) -> Callable[[Context], dict]:
    def run(ctx: Context) -> dict:
        import torch

        run_dir = ctx.outdir / "demos" / app.name
        argv = [
            "demo",
            "--config",
            str(ROOT / app.demo_config),
            f"run_dir={run_dir}",
            *_device_overrides(ctx, app),
        ]
        if ctx.dry_run:
            argv += ["trainer.max_steps=2", *app.demo_dry]
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        cli(app.script, argv)
        data: dict[str, Any] = {"command": f"{app.script} {shlex.join(argv)}"}
        data["cuda_peak_bytes"] = (
            torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
        )
        results = run_dir / "results.md"
        data["results_md"] = results.read_text() if results.is_file() else ""
        sys.stdout.flush()
        sys.stderr.flush()
        text = ctx.log.read_text(errors="replace") if ctx.log else ""
        trainers = LIGHTNING_DEVICE.findall(text)
        data["trainers"] = len(trainers)
        data["trainers_on_gpu"] = sum(1 for available, _, used in trainers if used == "True")
        if not ctx.dry_run:
            if not trainers or data["trainers_on_gpu"] != len(trainers):
                raise StepError(
                    f"{data['trainers_on_gpu']} of {len(trainers)} Lightning trainers used the GPU",
                    data,
                )
            if data["cuda_peak_bytes"] <= 0:
                raise StepError("nothing was allocated on the GPU", data)
        return data

    return run


def _step_clock(warmup: int):
    """A Lightning callback: wall time between the starts of consecutive training steps
    (forward, backward, optimizer and every hook of a step, the GPU synchronized), and the
    peak GPU memory from the first timed step on."""
    import torch
    from lightning.pytorch import Callback

    class StepClock(Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            _sync()
            self.starts.append(time.perf_counter())
            if len(self.starts) == warmup + 1 and torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()

        def on_train_end(self, trainer, module) -> None:
            _sync()
            self.starts.append(time.perf_counter())

    return StepClock()


def time_training(
    workload, run_dir: Path, *, accelerator: str, precision: str, warmup: int, timed: int
) -> dict:
    """Train ``workload.module`` on its synthetic batch for ``warmup + timed`` steps with
    rq-core's trainer; per-step wall times of the timed steps and the peak GPU memory."""
    import torch
    from rq_core.training import RunCheckpoint, TrainerConfig, build_trainer
    from torch.utils.data import DataLoader, Dataset

    class Repeated(Dataset):
        def __len__(self) -> int:
            return warmup + timed + 1

        def __getitem__(self, index: int):
            return workload.batch

    clock = _step_clock(warmup)
    trainer = build_trainer(
        TrainerConfig(
            max_steps=warmup + timed,
            accelerator=accelerator,
            devices="1",
            precision=precision,
            checkpoint_every_n_steps=0,
            log_every_n_steps=10,
            resume="never",
            tensorboard=False,
            progress_bar=False,
            seed=0,
        ),
        run_dir,
        callbacks=[clock],
    )
    # No checkpoint: a real run writes one every 1,000 steps, here it would be every run's last
    # step (1.5 GB of MID-Net memory banks), time the run's budget cannot spare.
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, RunCheckpoint)]
    loader = DataLoader(Repeated(), batch_size=None, collate_fn=lambda batch: batch)
    trainer.fit(workload.module, train_dataloaders=loader)
    steps = [b - a for a, b in zip(clock.starts[warmup:], clock.starts[warmup + 1 :])][:timed]
    if len(steps) < timed:
        raise StepError(f"only {len(steps)} of {timed} timed steps ran")
    median = statistics.median(steps)
    return {
        "steps_timed": len(steps),
        "step_s_median": median,
        "step_s_min": min(steps),
        "step_s_max": max(steps),
        "samples_per_s": workload.batch_size / median,
        "peak_gpu_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
        "full_steps": workload.full_steps,
        "schedule": workload.schedule,
        "projected_gpu_hours": workload.full_steps * median / 3600,
    }


def step_paper(app: App) -> Callable[[Context], dict]:
    def run(ctx: Context) -> dict:
        import app_internals

        rows = []
        warmup, timed = (1, 1) if ctx.dry_run else (5, 30)
        for variant in app.variants:
            _release_memory()  # the previous variant's model, optimizer and trainer
            overrides = [*variant.overrides, *(app.paper_dry if ctx.dry_run else ())]
            cfg = app_config(app, variant.config, overrides)
            if app.name == "byol-a":
                workload = app_internals.byol_a_workload(cfg)
            elif app.name == "mid-net":
                tiny = {"num_points": 512, "bank_shapes": 64} if ctx.dry_run else {}
                workload = app_internals.mid_net_workload(cfg, **tiny)
            else:
                workload = app_internals.dabs_workload(cfg)
            run_dir = (
                ctx.outdir / "paper" / app.name / re.sub(r"\W+", "_", variant.label).strip("_")
            )
            print(
                f"[paper] {app.name}: {variant.label}, batch {workload.batch_size}, "
                f"precision {cfg.trainer.precision}",
                flush=True,
            )
            timing = time_training(
                workload,
                run_dir,
                accelerator=ctx.accelerator,
                precision=cfg.trainer.precision,
                warmup=warmup,
                timed=timed,
            )
            rows.append(
                {
                    "variant": variant.label,
                    "rq": variant.rq,
                    "config": variant.config,
                    "overrides": overrides,
                    "batch_size": workload.batch_size,
                    "precision": cfg.trainer.precision,
                    **timing,
                }
            )
            print(
                f"[paper] {variant.label}: {timing['step_s_median'] * 1e3:.1f} ms/step, "
                f"{timing['samples_per_s']:.0f} samples/s",
                flush=True,
            )
            del workload
        return {"rows": rows}

    return run


def step_pipeline(app: App) -> Callable[[Context], dict]:
    def run(ctx: Context) -> dict:
        import app_internals

        warmup, timed = (1, 2) if ctx.dry_run else (3, 30)
        variant = app.variants[0]
        cfg = app_config(app, variant.config, list(app.paper_dry) if ctx.dry_run else [])
        work = ctx.outdir / "pipelines"
        work.mkdir(parents=True, exist_ok=True)
        if app.name == "byol-a":
            demo = app_config(app, app.demo_config, list(app.demo_dry) if ctx.dry_run else [])
            from omegaconf import OmegaConf

            pipeline = app_internals.byol_a_pipeline(
                cfg, OmegaConf.to_container(demo.demo.corpus), ctx.cache, work, warmup + timed
            )
        elif app.name == "mid-net":
            kwargs = {"num_points": 512, "shapes_per_class": 1} if ctx.dry_run else {}
            pipeline = app_internals.mid_net_pipeline(cfg, work, warmup + timed, **kwargs)
        else:
            pipeline = app_internals.dabs_pipeline(cfg, ctx.cache, warmup + timed)
        batches = iter(pipeline.loader)
        for _ in range(warmup):  # the workers start and open their files
            next(batches)
        start = time.perf_counter()
        for _ in range(timed):
            next(batches)
        seconds = time.perf_counter() - start
        del batches
        return {
            "config": variant.config,
            "batch_size": pipeline.batch_size,
            "workers": pipeline.workers,
            "cpus": os.cpu_count(),
            "source": pipeline.source,
            "batches_timed": timed,
            "samples_per_s": timed * pipeline.batch_size / seconds,
        }

    return run


STEPS: list[Step] = [
    Step("tests", 1, step_tests, 240, "pytest -m gpu (every CUDA test)"),
    *[
        Step(f"demo-{a}", 1, step_demo(APPS[a]), 240, f"{APPS[a].script} demo on the GPU")
        for a in APPS
    ],
    Step("quantize", 2, step_quantize, 90, "benchmarks/quantize.py --device cuda"),
    *[
        Step(f"paper-{a}", 2, step_paper(APPS[a]), 120, f"{a}: paper model, synthetic batches")
        for a in APPS
    ],
    *[
        Step(f"pipeline-{a}", 2, step_pipeline(APPS[a]), 60, f"{a}: input pipeline on the CPUs")
        for a in APPS
    ],
]


# -------------------------------------------------------------------------------- running


class StepError(RuntimeError):
    """A step's check failed; ``data`` is what it measured before failing."""

    def __init__(self, message: str, data: dict | None = None) -> None:
        super().__init__(message)
        self.data = data or {}


def _result_path(ctx: Context, name: str) -> Path:
    return ctx.outdir / "results" / f"{name}.json"


def _write_result(ctx: Context, name: str, result: dict) -> None:
    path = _result_path(ctx, name)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")


def run_here(ctx: Context, step: Step) -> dict:
    """Run ``step`` in this process; record and return its result (never raises)."""
    start = time.perf_counter()
    try:
        data, status, error = step.run(ctx), "ok", None
    except Exception as failure:  # noqa: BLE001 - any failure is recorded, the others go on
        traceback.print_exc()
        data, status = getattr(failure, "data", {}), "FAILED"
        error = f"{type(failure).__name__}: {failure}"
    result = {
        "name": step.name,
        "title": step.title,
        "status": status,
        "seconds": time.perf_counter() - start,
        "log": f"logs/{step.name}.log",
        "data": data,
        "error": error,
    }
    _write_result(ctx, step.name, result)
    return result


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Send this process's output to ``log`` for the block: file descriptors 1 and 2 (child
    processes, C libraries) and sys.stdout / sys.stderr (which need not be those descriptors,
    e.g. under pytest's capture). The stand-in streams are never closed, so a logging handler
    made inside the block keeps working after it."""
    sys.stdout.flush()
    sys.stderr.flush()
    streams = sys.stdout, sys.stderr
    saved = os.dup(1), os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for handle in (fd, *saved):
            os.close(handle)


def _not_run(ctx: Context, step: Step, why: str) -> dict:
    result = {
        "name": step.name,
        "title": step.title,
        "status": "not run",
        "seconds": 0.0,
        "log": f"logs/{step.name}.log",
        "data": {},
        "error": why,
    }
    _write_result(ctx, step.name, result)
    return result


def run_in_processes(ctx: Context, steps: list[Step], deadline: float) -> list[dict]:
    """Run ``steps`` side by side, one process each, each within its limit and the deadline."""
    running = []
    results = []
    for step in steps:
        left = deadline - time.monotonic()
        if left < 10:
            results.append(_not_run(ctx, step, "the run's time budget was spent"))
            continue
        log = open(ctx.outdir / "logs" / f"{step.name}.log", "ab")  # noqa: SIM115 - closed below
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            str(ctx.outdir),
            "--step",
            step.name,
        ]
        command += ["--dry-run"] if ctx.dry_run else []
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        running.append((step, process, log, time.monotonic() + min(step.limit_s, left)))
        print(f"[run] {step.name}: started ({step.title})", flush=True)
    for step, process, log, until in running:
        try:
            process.wait(timeout=max(1.0, until - time.monotonic()))
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            timed_out = True
        log.close()
        path = _result_path(ctx, step.name)
        if path.is_file():
            result = json.loads(path.read_text())
        else:
            why = (
                f"timed out after {step.limit_s:.0f} s (or the run's budget)"
                if timed_out
                else (
                    f"the step's process exited with {process.returncode} before recording a result"
                )
            )
            result = {
                "name": step.name,
                "title": step.title,
                "status": "FAILED",
                "seconds": None,
                "log": f"logs/{step.name}.log",
                "data": {},
                "error": why,
            }
            _write_result(ctx, step.name, result)
        results.append(result)
        print(f"[run] {step.name}: {result['status']}", flush=True)
    return results


def run_all(ctx: Context) -> list[dict]:
    deadline = time.monotonic() + BUDGET_S
    results = []
    for phase in sorted({s.phase for s in STEPS}):
        steps = [s for s in STEPS if s.phase == phase]
        if ctx.dry_run:
            for step in steps:
                ctx.log = ctx.outdir / "logs" / f"{step.name}.log"
                with _output_to(ctx.log):
                    result = run_here(ctx, step)
                print(
                    f"[run] {step.name}: {result['status']} ({result['seconds']:.1f} s)", flush=True
                )
                results.append(result)
        elif phase == 1:
            results += run_in_processes(ctx, steps, deadline)
        else:
            for step in steps:  # one at a time: timings must not share the GPU or the CPUs
                results += run_in_processes(ctx, [step], deadline)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("outdir", type=Path)
    parser.add_argument(
        "--dry-run", action="store_true", help="every step on CPU, tiny, in this process"
    )
    parser.add_argument("--step", choices=[s.name for s in STEPS], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    outdir = args.outdir.resolve()
    for sub in ("logs", "results"):
        (outdir / sub).mkdir(parents=True, exist_ok=True)
    dry = args.dry_run
    ctx = Context(outdir, dry)
    if args.step:  # one step, in a process of its own (run_in_processes)
        ctx.log = outdir / "logs" / f"{args.step}.log"
        result = run_here(ctx, next(s for s in STEPS if s.name == args.step))
        return 0 if result["status"] == "ok" else 1
    start = time.perf_counter()
    results = run_all(ctx)
    import summary

    text = summary.render(outdir, dry_run=dry, seconds=time.perf_counter() - start)
    (outdir / "summary.md").write_text(text)
    failed = [r["name"] for r in results if r["status"] != "ok"]
    install = summary.load_result(outdir, "install")
    if install is not None and install["status"] != "ok":
        failed.insert(0, "install")
    print(
        f"[run] summary: {outdir / 'summary.md'}; "
        + (f"FAILED: {', '.join(failed)}" if failed else "all steps ok")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
