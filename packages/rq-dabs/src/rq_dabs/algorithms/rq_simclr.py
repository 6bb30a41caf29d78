"""``rq``: SimCLR on two randomized quantizations of the token embeddings (RQ paper, 5.4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rq_core import randomized_quantize
from rq_core.losses.ntxent import NTXentLoss
from torch import Tensor

from rq_dabs.algorithms.base import PretrainingAlgorithm
from rq_dabs.encoder import DomainAgnosticTransformer

__all__ = ["RQSimCLR"]


class RQSimCLR(PretrainingAlgorithm):
    """Two views = two independent RQ draws of the same token embeddings ``(B, L, D)``; each
    embedding dim is one channel, its min/max taken over the tokens (``channel_dim=-1``).
    The encoder's pooled feature goes through its head (LayerNorm + Linear to 128) into NT-Xent.

    RQ is piecewise constant, so by default the embedding modules get zero gradient and stay at
    their initialization (as in the paper); ``straight_through=True`` passes the identity's
    gradient and trains them (what the paper left for future work).

    Args:
        num_bins: bins per channel (default 8: the DABS setting recorded in docs/decisions.md,
            "`rq` = two independent RQ draws").
        collapse, spacing, p: as :func:`rq_core.randomized_quantize`.
        straight_through: train the embedding modules through RQ.
        temperature: NT-Xent temperature; 0.2 is DABS e-Mix's (``src/systems/emix.py``), kept so
            that RQ and e-Mix differ only in the view-making.
        gather_distributed: negatives from every rank under DDP.

    >>> from rq_dabs.specs import Input1dSpec
    >>> from rq_dabs.encoder import TransformerConfig
    >>> model = DomainAgnosticTransformer(
    ...     [Input1dSpec(20, 5, 3)], TransformerConfig(depth=1, dim=32, mlp_dim=64)
    ... )
    >>> loss, metrics = RQSimCLR().loss(model, [torch.randn(4, 20, 3)])
    >>> loss.shape
    torch.Size([])
    """

    name = "rq"

    def __init__(
        self,
        num_bins: int = 8,
        collapse: str = "random",
        spacing: str = "random",
        p: float = 1.0,
        straight_through: bool = False,
        temperature: float = 0.2,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.collapse = collapse
        self.spacing = spacing
        self.p = p
        self.straight_through = straight_through
        self.trains_embedding = straight_through
        self.criterion = NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)

    def quantize(self, tokens: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return randomized_quantize(
            tokens,
            self.num_bins,
            channel_dim=-1,
            collapse=self.collapse,
            spacing=self.spacing,
            p=self.p,
            straight_through=self.straight_through,
            generator=generator,
        )

    def loss(
        self,
        model: DomainAgnosticTransformer,
        inputs: Sequence[Tensor],
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        tokens = model.embed(inputs)
        z0 = model.encode(self.quantize(tokens, generator))
        z1 = model.encode(self.quantize(tokens, generator))
        loss = self.criterion(z0, z1)
        with torch.no_grad():
            sim = (
                torch.nn.functional.normalize(z0, dim=1)
                @ torch.nn.functional.normalize(z1, dim=1).T
            )
            acc = (sim.argmax(1) == torch.arange(len(sim), device=sim.device)).float().mean()
        return loss, {"pair_acc": acc}
