"""The config schema of every ``rq-mid-net`` command (OmegaConf structured configs).

Paper values are cited in ``configs/shapenet_paper.yaml``; the defaults here are the paper's
where the paper has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rq_core.training import TrainerConfig
from rq_points.encoder import MidNetConfig
from rq_points.augmentations import PointAugmentation


@dataclass
class DataConfig:
    """One shape set, turned into an HDF5 cache under ``cache_dir`` on first use.

    ``source``: ``procedural`` (embedded family), ``folder`` (``root`` holds metadata.csv),
    ``sweethome3d`` (``root`` is sweethome3d.jar) or ``cache`` (``root`` is a prepared .h5,
    e.g. from ``data_scripts/points``).
    """

    source: str = "procedural"
    root: str = ""
    num_points: int = 2048
    shapes_per_class: int = 60
    num_clusters: int = 100  # MID-Net's seg_num: 100
    seed: int = 0
    splits: list[str] = field(default_factory=lambda: ["train"])


@dataclass
class OptimConfig:
    lr: float = 0.03  # mid_hrnet_d6.yaml learning_rate
    momentum: float = 0.9
    weight_decay: float = 5e-4  # mid_hrnet_d6.yaml weight_decay
    lr_milestones: list[int] = field(default_factory=lambda: [200, 300])  # epochs, x0.1 each
    batch_size: int = 32  # mid_hrnet_d6.yaml batch_size (per process)
    num_workers: int = 0


@dataclass
class LossConfig:
    temperature: float = 0.1  # sigma
    bank_momentum: float = 0.5  # momentum
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0])


@dataclass
class ClassifyConfig:
    ratios: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2, 1.0])
    linear: bool = True
    finetune: bool = False
    finetune_epochs: int = 100
    finetune_lr: float = 0.01
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])
    probe_lr: float = 1e-3
    probe_epochs: int = 200


@dataclass
class SegmentConfig:
    ratios: list[float] = field(default_factory=lambda: [0.01, 0.05, 1.0])
    points_per_shape: int = 2048
    hidden: int = 256  # 128 * factor in predict_module
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 1024  # points per step
    finetune: bool = False
    finetune_epochs: int = 100
    finetune_lr: float = 0.01
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])


@dataclass
class MidNetRunConfig:
    """Everything one ``rq-mid-net`` command reads."""

    run_dir: str = "runs/mid-net"
    cache_dir: str = ""  # "" -> $RQ_CACHE or ~/.cache/rq
    device: str = "auto"  # evaluation device: auto | cpu | cuda
    num_threads: int = 0  # torch CPU threads; 0 = torch's default (one per core)
    pretrained: str = ""  # classify/segment: a checkpoint, "random", or "" (RUN_DIR's last.ckpt)
    data: DataConfig = field(default_factory=DataConfig)
    classify_data: DataConfig = field(default_factory=lambda: DataConfig(splits=["train", "valid", "test"]))
    segment_data: DataConfig = field(default_factory=lambda: DataConfig(splits=["train", "valid", "test"]))
    model: MidNetConfig = field(default_factory=MidNetConfig)
    augmentation: PointAugmentation = field(default_factory=PointAugmentation)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_epochs=400))
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    demo_variants: list[str] = field(default_factory=lambda: ["random", "midfc", "rq"])
