import copy

import pytest
import torch
from rq_core.momentum import cosine_momentum, deactivate_requires_grad, update_momentum
from torch import nn


def test_update_momentum_is_an_ema_step_and_copies_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(8, 3))  # changes the BN running statistics
    before = [p.clone() for p in ema.parameters()]
    update_momentum(model, ema, m=0.9)
    for p_ema, p_before, p in zip(ema.parameters(), before, model.parameters()):
        assert torch.allclose(p_ema, 0.9 * p_before + 0.1 * p)
    assert torch.equal(ema[1].running_mean, model[1].running_mean)


def test_update_momentum_extremes_and_errors():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    kept = b.weight.clone()
    update_momentum(a, b, m=1.0)
    assert torch.equal(b.weight, kept)
    with pytest.raises(ValueError, match="momentum m"):
        update_momentum(a, b, m=1.5)
    with pytest.raises(ValueError, match="copy of model"):
        update_momentum(a, nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), m=0.5)


def test_cosine_momentum_goes_from_base_to_end_monotonically():
    values = [cosine_momentum(k, 100, base=0.996, end=1.0) for k in range(0, 101)]
    assert values[0] == pytest.approx(0.996) and values[-1] == pytest.approx(1.0)
    assert values[50] == pytest.approx(0.998)
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert cosine_momentum(500, 100) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="max_steps"):
        cosine_momentum(0, 0)


def test_deactivate_requires_grad_freezes_every_parameter():
    model = deactivate_requires_grad(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)))
    assert not any(p.requires_grad for p in model.parameters())
