import math

import pytest
import torch
from rq_dabs.algorithms.emix import EMix, emix_loss, sample_mix_coefficients


def _cross_entropy(row, target):
    return -row[target] + math.log(sum(math.exp(v) for v in row))


def _logits(mixed, clean, t):
    def unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    m = [unit(r) for r in mixed]
    z = [unit(r) for r in clean]
    return [[sum(a * b for a, b in zip(mi, zj)) / t for zj in z] for mi in m]


MIXED = [[1.0, 0.0], [0.6, 0.8], [0.0, -2.0]]
CLEAN = [[0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]]
LAMBDAS = [0.9, 0.5, 0.7]
PERM = [2, 0, 1]


def _by_hand(form):
    logits = _logits(MIXED, CLEAN, 0.2)
    own = [_cross_entropy(logits[i], i) for i in range(3)]
    partner = [_cross_entropy(logits[i], PERM[i]) for i in range(3)]
    if form == "per_sample":
        return sum(LAMBDAS[i] * own[i] + (1 - LAMBDAS[i]) * partner[i] for i in range(3)) / 3
    lam = sum(LAMBDAS) / 3
    return lam * sum(own) / 3 + (1 - lam) * sum(partner) / 3


@pytest.mark.parametrize("form", ["per_sample", "reference_batch_mean"])
def test_loss_matches_hand_computation(form):
    got = emix_loss(
        torch.tensor(MIXED, dtype=torch.float64),
        torch.tensor(CLEAN, dtype=torch.float64),
        torch.tensor(LAMBDAS, dtype=torch.float64),
        torch.tensor(PERM),
        temperature=0.2,
        lambda_form=form,
    )
    assert got.item() == pytest.approx(_by_hand(form), rel=1e-10)


def test_the_two_forms_differ_when_lambdas_differ():
    assert abs(_by_hand("per_sample") - _by_hand("reference_batch_mean")) > 1e-3


def test_mix_coefficients_are_at_least_one_half():
    lam = sample_mix_coefficients(1000, generator=torch.Generator().manual_seed(0))
    assert lam.min() >= 0.5 and lam.max() <= 1.0
    assert 0.70 < lam.mean() < 0.80  # max(U, 1 - U) has mean 3/4


def test_mixing_partner_gets_no_gradient_but_embedding_does(sensor_model):
    loss, _ = EMix().loss(
        sensor_model, [torch.randn(6, 20, 3)], generator=torch.Generator().manual_seed(0)
    )
    loss.backward()
    assert torch.count_nonzero(sensor_model.embed_modules[0].project.weight.grad) > 0


def test_unknown_lambda_form_raises():
    with pytest.raises(ValueError, match="lambda_form"):
        EMix(lambda_form="mean")
