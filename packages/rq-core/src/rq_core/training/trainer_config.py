"""``TrainerConfig``: the ``trainer:`` section every app config embeds (typed, OmegaConf)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainerConfig"]


@dataclass
class TrainerConfig:
    """How to run training; every field can be overridden as ``trainer.<field>=value``.

    ``devices``/``accelerator``/``strategy``/``precision`` take Lightning's values as
    strings ("auto", "2", "0,1", "cpu", "gpu", "ddp", "32-true", "16-mixed",
    "bf16-mixed"). Under torchrun or SLURM the world size comes from the environment.
    """

    max_epochs: int | None = None  # None with max_steps=-1: Lightning's default (1000 epochs)
    max_steps: int = -1  # -1: bounded by max_epochs only
    devices: str = "auto"  # "auto", a count ("2"), or ids ("0,1")
    accelerator: str = "auto"  # "auto" picks GPU when present, else CPU
    num_nodes: int = 1  # nodes of a SLURM/torchrun job
    strategy: str = "auto"  # "auto" = DDP when more than one process
    precision: str = "32-true"  # "32-true", "16-mixed", "bf16-mixed"
    checkpoint_every_n_steps: int = 1000  # plus one at every epoch end; 0 = epoch ends only
    log_every_n_steps: int = 50
    resume: str = "auto"  # "auto": continue from RUN_DIR/checkpoints/last.ckpt; "never"; or a path
    seed: int = 42  # rank r seeds its RNGs with seed + r
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower)
    sync_batchnorm: bool = True  # global BN statistics under DDP (as BYOL/SimCLR); GPU only
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 0  # 0: no sanity pass, so fresh and resumed runs match
    progress_bar: bool = True
    tensorboard: bool = True
