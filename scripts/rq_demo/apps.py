"""The apps of the suite, one typed record each: what the main job runs and reports for an
app, and what its docker image must hold. Read by the main job and by ``tests/docker``
(``tests/docker/dockerfiles.py``); ``tests/main_job/test_apps.py`` checks every record
against the app's pyproject, configs and compose service.

Expected stage times live here too, with the one measurement they come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------ expected times

# Where the expected times below were measured: the stage bars and the whole-run ETA scale
# them by how this machine compares (actual / expected of the stages finished so far).
MEASURED_ON = (
    "an idle 2-core VM on 2026-11-25, data already cached (quick run 54 s, full run 22m12s "
    "with the DABS demo on 1 thread; its default of 2 threads then took 9m42s alone)"
)


@dataclass(frozen=True)
class StageTime:
    """Wall seconds one stage took on the reference machine (:data:`MEASURED_ON`)."""

    quick: float  # with --quick (each app's demo_quick.yaml)
    full: float  # the full demo (each app's demo.yaml)

    def of(self, quick: bool) -> float:
        return self.quick if quick else self.full


FIGURE_TIME = StageTime(quick=5, full=5)
BENCHMARK_TIME = StageTime(quick=5, full=10)


# ------------------------------------------------------------------------------ the apps


@dataclass(frozen=True)
class AppSpec:
    """One app: its folder, entry points, modality, report texts and docker contents."""

    name: str  # folder under apps/, the main job's stage name and the compose service
    script: str  # console script (``[project.scripts]``), the image's RQ_APP
    package: str  # import package under apps/NAME/src
    distribution: str  # the app's distribution name (``[project] name``, compose's DIST)
    modality: str  # its modality package: the folder under packages/
    # Distributions that only this app's modality brings (PEP 503 names): its image holds
    # them, no other image does.
    modality_distributions: frozenset[str]
    demo_imports: tuple[str, ...]  # what `demo` imports beyond the CLI (the image must have it)
    title: str  # the modality as the report names it
    baseline: str  # the modality's baseline augmentation, compared with RQ
    paper_commands: tuple[str, ...]  # the paper-scale runs, printed in the report
    expected: StageTime  # the app's `demo` stage
    # Run in the image once the app is installed (compose's build arg ASSETS_COMMAND): puts the
    # files its demo reads that no wheel carries into RQ_ASSETS (/opt/rq/assets), so the demo
    # runs with no network; empty when the wheels carry everything.
    assets_command: str = ""
    # Whether `demo` takes the boolean config key `force` (redo its own finished runs). The
    # main job appends `force=true` under --force only then. False until the apps' refactor
    # (issue 14, item 2) gives every app config that key: flip it per app there.
    accepts_force: bool = False

    @property
    def folder(self) -> Path:
        return ROOT / "apps" / self.name

    @property
    def demo_config(self) -> Path:
        """The config `demo` reads when given none."""
        return self.folder / "configs" / "demo.yaml"

    @property
    def quick_config(self) -> Path:
        """The smoke-size config the main job passes with --quick."""
        return self.folder / "configs" / "demo_quick.yaml"

    def config(self, quick: bool) -> Path:
        return self.quick_config if quick else self.demo_config

    @property
    def section_title(self) -> str:
        return f"{self.title}: RQ vs {self.baseline} vs random init"


APPS: tuple[AppSpec, ...] = (
    AppSpec(
        name="byol-a",
        script="rq-byol-a",
        package="rq_byol_a",
        distribution="rq-byol-a",
        modality="rq-audio",
        modality_distributions=frozenset(
            {"rq-audio", "torchaudio", "soundfile", "soxr", "nnaudio"}
        ),
        demo_imports=("tinysoundfont", "espeakng_loader", "rq_audio.data.corpus.build"),
        title="audio (BYOL-A)",
        baseline="Mixup",
        paper_commands=(
            "rq-byol-a prepare --config apps/byol-a/configs/audioset_paper.yaml",
            "rq-byol-a pretrain --config apps/byol-a/configs/audioset_paper.yaml",
            "rq-byol-a pretrain --config apps/byol-a/configs/audioset_byola.yaml",
            "rq-byol-a evaluate --config apps/byol-a/configs/audioset_paper.yaml",
        ),
        # full: 4m43s after that day's demo.yaml change (250 notes, 5 probe seeds)
        expected=StageTime(quick=30, full=285),
        accepts_force=True,  # ByolAAppConfig.force: redo the finished pretrainings
    ),
    AppSpec(
        name="mid-net",
        script="rq-mid-net",
        package="rq_mid_net",
        distribution="rq-mid-net",
        modality="rq-points",
        modality_distributions=frozenset({"rq-points", "ocnn"}),
        demo_imports=("ocnn", "rq_points.data.sources"),
        title="points (MID-Net)",
        baseline="MID-FC (no RQ)",
        paper_commands=(
            "rq-mid-net prepare --config apps/mid-net/configs/shapenet_paper.yaml",
            "rq-mid-net pretrain --config apps/mid-net/configs/shapenet_paper.yaml",
            "rq-mid-net pretrain --config apps/mid-net/configs/shapenet_midfc.yaml",
            "rq-mid-net classify --config apps/mid-net/configs/shapenet_paper.yaml",
            "rq-mid-net segment --config apps/mid-net/configs/shapenet_paper.yaml",
        ),
        expected=StageTime(quick=30, full=365),
        accepts_force=True,
    ),
    AppSpec(
        name="dabs",
        script="rq-dabs",
        package="rq_dabs_app",
        distribution="rq-dabs-app",
        modality="rq-dabs",
        modality_distributions=frozenset({"rq-dabs"}),
        demo_imports=(
            "sklearn.datasets",
            "PIL",
            "espeakng_loader",
            "rq_dabs.data.embedded",
        ),
        title="DABS (token embeddings)",
        baseline="e-Mix",
        paper_commands=(
            "rq-dabs pretrain --domain natural_images --algorithm rq",
            "rq-dabs pretrain --domain natural_images --algorithm emix",
            "rq-dabs transfer --domain natural_images",
        ),
        expected=StageTime(quick=20, full=582),
        assets_command="rq-dabs fetch-assets",  # the sensor domain's BasicMotions files
        accepts_force=True,  # DabsAppConfig.force reaches every Stage of `rq-dabs demo`
    ),
)


def app_named(name: str) -> AppSpec:
    """The record of the app in folder ``apps/NAME``."""
    for app in APPS:
        if app.name == name:
            return app
    raise KeyError(f"no app named {name!r}; the apps are {[a.name for a in APPS]}")
