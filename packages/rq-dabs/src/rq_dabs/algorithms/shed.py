"""``shed``: Shuffled Embedding Detection, DABS's other baseline (``src/systems/shed.py``).

In each example, ceil(15%) of the token embeddings are picked at random and shifted among
themselves (a roll by one over the picked positions, so none stays in place); a linear
predictor on every output token (CLS excluded) says whether it was moved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rq_dabs.algorithms.base import PretrainingAlgorithm
from rq_dabs.encoder import DomainAgnosticTransformer

__all__ = ["ShED", "shuffle_embeddings"]


def shuffle_embeddings(
    tokens: Tensor, fraction: float = 0.15, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Shift ``ceil(fraction * L)`` random tokens of each example among themselves.

    Returns the shuffled ``(B, L, D)`` tokens and ``(B, L)`` long labels (1 = moved).

    >>> t = torch.arange(10.0).view(1, 10, 1)
    >>> s, moved = shuffle_embeddings(t, 0.2, generator=torch.Generator().manual_seed(0))
    >>> int(moved.sum()), bool((s != t).squeeze(-1).eq(moved.bool()).all())
    (2, True)
    """
    b, n, d = tokens.shape
    k = math.ceil(n * fraction)
    if k < 2:
        raise ValueError(f"ShED needs at least 2 shuffled tokens per example; got {k} of {n}")
    picked = torch.rand(b, n, device=tokens.device, generator=generator).topk(k, dim=-1).indices
    sources = torch.roll(picked, shifts=1, dims=-1)
    moved_values = torch.gather(tokens, 1, sources.unsqueeze(-1).expand(b, k, d))
    shuffled = tokens.scatter(1, picked.unsqueeze(-1).expand(b, k, d), moved_values)
    labels = torch.zeros(b, n, dtype=torch.long, device=tokens.device).scatter(1, picked, 1)
    return shuffled, labels


class ShED(PretrainingAlgorithm):
    """ShED with ``fraction`` = 0.15 (DABS ``FRAC_TO_PERMUTE``) and a Linear(dim, 2) predictor."""

    name = "shed"

    def __init__(self, dim: int = 256, fraction: float = 0.15) -> None:
        super().__init__()
        self.fraction = fraction
        self.predictor = nn.Linear(dim, 2)

    def loss(
        self,
        model: DomainAgnosticTransformer,
        inputs: Sequence[Tensor],
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        tokens = model.embed(inputs)
        shuffled, moved = shuffle_embeddings(tokens, self.fraction, generator=generator)
        outputs = model.encode(shuffled, prepool=True)[:, 1:]  # drop CLS
        logits = self.predictor(outputs)
        loss = F.cross_entropy(logits.reshape(-1, 2), moved.reshape(-1))
        with torch.no_grad():
            acc = (logits.argmax(-1) == moved).float().mean()
        return loss, {"detect_acc": acc}
