import math

import pytest
import torch
import torch.nn.functional as F
from rq_core.losses.ntxent import NTXentLoss


def direct_ntxent(z0: torch.Tensor, z1: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR Eq. 1 written out with loops over the 2N embeddings (2k, 2k+1 are a pair)."""
    n = z0.shape[0]
    z = torch.stack([z0, z1], dim=1).reshape(2 * n, -1)
    z = z / z.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(2 * n):
        j = i + 1 if i % 2 == 0 else i - 1
        denominator = sum(
            math.exp(float(z[i] @ z[k]) / temperature) for k in range(2 * n) if k != i
        )
        total += -math.log(math.exp(float(z[i] @ z[j]) / temperature) / denominator)
    return torch.tensor(total / (2 * n), dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_ntxent_matches_the_direct_formula(temperature):
    torch.manual_seed(0)
    z0, z1 = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    ours = NTXentLoss(temperature=temperature)(z0, z1)
    assert torch.allclose(ours, direct_ntxent(z0, z1, temperature), atol=1e-9, rtol=0)


def test_ntxent_is_symmetric_in_the_two_views_and_low_for_matching_pairs():
    torch.manual_seed(0)
    z0, z1 = torch.randn(8, 16), torch.randn(8, 16)
    loss = NTXentLoss(temperature=0.5)
    assert torch.allclose(loss(z0, z1), loss(z1, z0), atol=1e-6)
    matched = loss(z0, z0 + 1e-3 * torch.randn_like(z0))
    assert matched < loss(z0, z1)


def test_ntxent_falls_over_20_steps():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(16, 8)
    x = torch.randn(32, 16)
    loss_fn = NTXentLoss(temperature=0.2)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        view0 = x + 0.3 * torch.randn_like(x)
        view1 = x + 0.3 * torch.randn_like(x)
        loss = loss_fn(encoder(view0), encoder(view1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


def test_ntxent_without_gather_equals_with_gather_in_one_process():
    z0, z1 = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(
        NTXentLoss(gather_distributed=False)(z0, z1), NTXentLoss(gather_distributed=True)(z0, z1)
    )


def test_ntxent_rejects_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=0.0)
    with pytest.raises(ValueError, match="z0 and z1"):
        NTXentLoss()(torch.randn(4, 3), torch.randn(5, 3))


def test_ntxent_gradient_matches_autograd_of_the_direct_formula():
    torch.manual_seed(2)
    z0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    z1 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: NTXentLoss(temperature=0.3)(a, b), (z0, z1))
    # and F.cross_entropy over explicit 2N x 2N logits agrees
    z = F.normalize(torch.cat([z0, z1]), dim=1)
    logits = z @ z.T / 0.3
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(4, 8), torch.arange(0, 4)])
    assert torch.allclose(F.cross_entropy(logits, targets), NTXentLoss(temperature=0.3)(z0, z1))
