"""What every pretraining algorithm provides: a loss on a batch of a domain's inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rq_dabs.encoder import DomainAgnosticTransformer

__all__ = ["PretrainingAlgorithm"]


class PretrainingAlgorithm(nn.Module):
    """Base class: ``loss(model, inputs)`` -> ``(scalar loss, {metric name: scalar})``.

    An algorithm is a module so that its own trainable parts (ShED's predictor) are saved and
    optimized with the encoder. ``trains_embedding`` says whether the encoder's embedding
    modules are optimized (False for RQ without straight-through: they get no gradient, so
    they are left out of the optimizer and stay exactly at their initialization, weight decay
    included).
    """

    name: str = "base"
    trains_embedding: bool = True
    #: False for ``random``: nothing to optimize, pretraining is skipped.
    has_objective: bool = True

    def loss(
        self,
        model: DomainAgnosticTransformer,
        inputs: Sequence[Tensor],
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError
