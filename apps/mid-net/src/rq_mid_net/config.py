"""The config of every ``rq-mid-net`` command: :class:`MidNetAppConfig` (OmegaConf structured
config) embedding the library dataclasses of rq-points and rq-core.

Paper values are cited in ``configs/shapenet_paper.yaml`` and in the embedded dataclasses;
the defaults are the paper's where the paper has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rq_core.sweep import SweepConfig
from rq_core.training import TrainerConfig
from rq_points.augmentations import PointAugmentation
from rq_points.data.shape_sets import ShapeSetConfig
from rq_points.encoder import MidNetConfig
from rq_points.evaluate import ClassifyConfig, SegmentConfig
from rq_points.pretrain import LossConfig, OptimConfig

__all__ = ["MidNetAppConfig"]


def _probe_set() -> ShapeSetConfig:
    return ShapeSetConfig(splits=["train", "valid", "test"])


@dataclass
class MidNetAppConfig:
    """Everything one ``rq-mid-net`` command reads."""

    run_dir: str = "runs/mid-net"
    cache_dir: str = ""  # "" -> $RQ_CACHE or ~/.cache/rq (rq_core.runs.cache_root)
    force: bool = False  # redo finished stages (pretrainings, probes, demo stages)
    device: str = "auto"  # evaluation device: auto | cpu | cuda
    num_threads: int = 0  # torch CPU threads; 0 = torch's default (one per core)
    pretrained: str = ""  # classify/segment: a checkpoint, "random", or "" (RUN_DIR's last.ckpt)
    # The pretraining's augmentation chain: rq (the paper's, Wu et al. 2023 Sec. 5.2) or midfc
    # (the MID-FC baseline: the same chain without RQ); `augmentation.*` tunes it.
    method: str = "rq"
    data: ShapeSetConfig = field(default_factory=ShapeSetConfig)
    classify_data: ShapeSetConfig = field(default_factory=_probe_set)
    segment_data: ShapeSetConfig = field(default_factory=_probe_set)
    model: MidNetConfig = field(default_factory=MidNetConfig)
    augmentation: PointAugmentation = field(default_factory=PointAugmentation)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_epochs=400))
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    demo_variants: list[str] = field(default_factory=lambda: ["random", "midfc", "rq"])
    # `sweep`: the quantizer settings tried (augmentation.rq_bins / rq_spacing / rq_collapse).
    # Bins bracket the paper's 30 for points (Wu et al. 2023, Sec. 5.2).
    sweep: SweepConfig = field(default_factory=lambda: SweepConfig(bins=[4, 8, 16, 30, 64]))
