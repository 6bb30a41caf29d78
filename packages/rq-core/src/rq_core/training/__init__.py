"""Training infrastructure on Lightning (needs the ``train`` extra).

>>> from rq_core.training import TrainerConfig
>>> TrainerConfig(max_steps=10).precision
'32-true'
"""

from rq_core.checkpoints import UnsafeCheckpointError
from rq_core.seeding import seed_everything_per_rank
from rq_core.training.checkpoint_io import AtomicCheckpointIO, load_checkpoint, to_weights_only
from rq_core.training.metrics_csv import MetricsCSVLogger
from rq_core.training.resumable_sampler import (
    ResumableSampler,
    SeededIndex,
    resumable_loader,
    sample_seed,
)
from rq_core.training.run_checkpoint import RunCheckpoint
from rq_core.training.trainer import (
    build_trainer,
    fit,
    last_checkpoint,
    previous_checkpoint,
    resolve_resume,
)
from rq_core.training.trainer_config import TrainerConfig

__all__ = [
    "AtomicCheckpointIO",
    "MetricsCSVLogger",
    "ResumableSampler",
    "RunCheckpoint",
    "SeededIndex",
    "TrainerConfig",
    "UnsafeCheckpointError",
    "build_trainer",
    "fit",
    "last_checkpoint",
    "load_checkpoint",
    "previous_checkpoint",
    "resolve_resume",
    "resumable_loader",
    "sample_seed",
    "seed_everything_per_rank",
    "to_weights_only",
]
