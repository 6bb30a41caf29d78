"""``emix``: DABS's e-Mix baseline (i-Mix on the token embeddings; DABS ``src/systems/emix.py``).

lambda ~ Beta(1, 1), lambda = max(lambda, 1 - lambda); the mixed input is
``lambda * e + (1 - lambda) * stop_grad(e[perm])``; with unit-norm outputs ``m`` (mixed) and
``z`` (clean), ``logits = m z^T / 0.2`` and sample i's loss is
``lambda_i CE(logits_i, i) + (1 - lambda_i) CE(logits_i, perm_i)``.

The reference draws one lambda per sample for the mixing but multiplies a ``(B, 1, 1)`` lambda
with the ``(B,)`` per-sample losses, which broadcasts to ``(B, 1, B)``: its mean is
``mean(lambda) * mean(CE(., i)) + (1 - mean(lambda)) * mean(CE(., perm))`` -- each sample's
loss is weighted by the batch-mean lambda instead of its own. ``lambda_form="per_sample"``
(default) is the intended loss; ``"reference_batch_mean"`` reproduces the reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from rq_dabs.algorithms.base import PretrainingAlgorithm
from rq_dabs.encoder import DomainAgnosticTransformer

__all__ = ["EMix", "LAMBDA_FORMS", "emix_loss", "sample_mix_coefficients"]

LAMBDA_FORMS = ("per_sample", "reference_batch_mean")


def sample_mix_coefficients(
    batch_size: int, alpha: float = 1.0, *, device=None, generator: torch.Generator | None = None
) -> Tensor:
    """``(B,)`` lambdas ~ Beta(alpha, alpha) folded to ``max(l, 1 - l) >= 0.5``.

    Beta(1, 1) is uniform, drawn from ``generator`` directly; other alphas go through
    Gamma draws (torch's Beta sampler takes no generator).
    """
    if alpha == 1.0:
        lam = torch.rand(batch_size, device=device, generator=generator)
    else:
        lam = torch.distributions.Beta(alpha, alpha).sample((batch_size,)).to(device)
    return torch.maximum(lam, 1 - lam)


def emix_loss(
    mixed: Tensor,
    clean: Tensor,
    lambdas: Tensor,
    permutation: Tensor,
    *,
    temperature: float = 0.2,
    lambda_form: str = "per_sample",
) -> Tensor:
    """e-Mix's loss from the head outputs ``mixed``, ``clean`` (B, K), lambdas (B,), perm (B,).

    >>> m, z = torch.randn(4, 8), torch.randn(4, 8)
    >>> lam, perm = torch.full((4,), 0.7), torch.tensor([1, 0, 3, 2])
    >>> bool(torch.isclose(
    ...     emix_loss(m, z, lam, perm),
    ...     emix_loss(m, z, lam, perm, lambda_form="reference_batch_mean"),
    ... ))
    True
    """
    if lambda_form not in LAMBDA_FORMS:
        raise ValueError(f"lambda_form must be one of {LAMBDA_FORMS}, got {lambda_form!r}")
    logits = F.normalize(mixed, dim=1) @ F.normalize(clean, dim=1).T / temperature
    own = torch.arange(len(logits), device=logits.device)
    ce_own = F.cross_entropy(logits, own, reduction="none")
    ce_partner = F.cross_entropy(logits, permutation, reduction="none")
    if lambda_form == "per_sample":
        return (lambdas * ce_own + (1 - lambdas) * ce_partner).mean()
    # The reference's broadcast: lambda (B, 1, 1) times losses (B,) -> (B, 1, B), then mean.
    lam = lambdas.view(-1, 1, 1)
    return (lam * ce_own + (1 - lam) * ce_partner).mean()


class EMix(PretrainingAlgorithm):
    """e-Mix: contrast each sample's mixed embedding against the clean batch.

    Args:
        alpha: Beta(alpha, alpha) for lambda (DABS ``EMixSystem.ALPHA = 1.0``).
        temperature: 0.2 (DABS ``EMixSystem.TEMPERATURE``).
        lambda_form: ``"per_sample"`` (default) or ``"reference_batch_mean"`` (the reference's
            broadcast, see the module docstring).
    """

    name = "emix"

    def __init__(
        self, alpha: float = 1.0, temperature: float = 0.2, lambda_form: str = "per_sample"
    ) -> None:
        super().__init__()
        if lambda_form not in LAMBDA_FORMS:
            raise ValueError(f"lambda_form must be one of {LAMBDA_FORMS}, got {lambda_form!r}")
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha
        self.temperature = temperature
        self.lambda_form = lambda_form

    def loss(
        self,
        model: DomainAgnosticTransformer,
        inputs: Sequence[Tensor],
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        tokens = model.embed(inputs)
        b = tokens.shape[0]
        lambdas = sample_mix_coefficients(b, self.alpha, device=tokens.device, generator=generator)
        permutation = torch.randperm(b, device=tokens.device, generator=generator)
        lam = lambdas.view(-1, 1, 1)
        mixed_tokens = lam * tokens + (1 - lam) * tokens[permutation].detach()
        mixed = model.encode(mixed_tokens)
        clean = model.encode(tokens)
        loss = emix_loss(
            mixed,
            clean,
            lambdas,
            permutation,
            temperature=self.temperature,
            lambda_form=self.lambda_form,
        )
        with torch.no_grad():
            acc = (
                ((mixed @ clean.T).argmax(1) == torch.arange(b, device=tokens.device))
                .float()
                .mean()
            )
        return loss, {"own_acc": acc}
