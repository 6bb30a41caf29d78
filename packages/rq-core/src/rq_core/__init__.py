"""rq-core: randomized quantization (Wu et al., ICCV 2023) and modality-free SSL blocks.

>>> import torch, rq_core
>>> y = rq_core.randomized_quantize(torch.rand(2, 3, 8, 8), num_bins=8)
>>> y.shape
torch.Size([2, 3, 8, 8])
"""

from rq_core.heads import BYOLPredictionHead, BYOLProjectionHead, MLPHead, SimCLRProjectionHead
from rq_core.linear_probe import ProbeSettings, linear_probe, linear_probe_folds
from rq_core.losses.byol import BYOLLoss, byol_loss
from rq_core.losses.memory_bank import MemoryBank
from rq_core.losses.ntxent import NTXentLoss
from rq_core.module import RandomizedQuantization
from rq_core.momentum import cosine_momentum, deactivate_requires_grad, update_momentum
from rq_core.quantize import (
    QuantizationParams,
    apply_randomized_quantization,
    randomized_quantize,
    sample_quantization_params,
)
from rq_core.seeding import seed_everything_per_rank

# rq_core.config and rq_core.training need the `train` extra (lightning, omegaconf) and are
# imported by their own names; everything above needs torch and numpy only.

__version__ = "0.1.0"

__all__ = [
    "BYOLLoss",
    "BYOLPredictionHead",
    "BYOLProjectionHead",
    "MLPHead",
    "MemoryBank",
    "NTXentLoss",
    "ProbeSettings",
    "QuantizationParams",
    "RandomizedQuantization",
    "SimCLRProjectionHead",
    "apply_randomized_quantization",
    "byol_loss",
    "cosine_momentum",
    "deactivate_requires_grad",
    "linear_probe",
    "linear_probe_folds",
    "randomized_quantize",
    "sample_quantization_params",
    "seed_everything_per_rank",
    "update_momentum",
]
