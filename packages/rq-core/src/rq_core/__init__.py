"""rq-core: randomized quantization (Wu et al., ICCV 2023) and modality-free SSL blocks.

>>> import torch, rq_core
>>> y = rq_core.randomized_quantize(torch.rand(2, 3, 8, 8), num_bins=8)
>>> y.shape
torch.Size([2, 3, 8, 8])
"""

from rq_core.module import RandomizedQuantization
from rq_core.quantize import (
    QuantizationParams,
    apply_randomized_quantization,
    randomized_quantize,
    sample_quantization_params,
)

__version__ = "0.1.0"

__all__ = [
    "QuantizationParams",
    "RandomizedQuantization",
    "apply_randomized_quantization",
    "randomized_quantize",
    "sample_quantization_params",
]
