import torch
import torch.nn.functional as F
from rq_core.heads import BYOLPredictionHead
from rq_core.losses.byol import BYOLLoss, byol_loss


def test_byol_loss_is_two_minus_two_cosine_and_the_normalized_mse():
    torch.manual_seed(0)
    p, z = torch.randn(8, 16, dtype=torch.float64), torch.randn(8, 16, dtype=torch.float64)
    cosine = (p * z).sum(1) / (p.norm(dim=1) * z.norm(dim=1))
    expected = (2 - 2 * cosine).mean()
    normalized_mse = ((F.normalize(p, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean()
    assert torch.allclose(byol_loss(p, z), expected, atol=1e-12)
    assert torch.allclose(byol_loss(p, z), normalized_mse, atol=1e-12)


def test_byol_loss_range_and_target_is_detached():
    x = torch.randn(4, 8)
    assert byol_loss(x, 5 * x).item() < 1e-6
    assert abs(byol_loss(x, -x).item() - 4.0) < 1e-5
    p = torch.randn(4, 8, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_symmetric_form_equals_sum_of_per_view_forms():
    torch.manual_seed(1)
    p0, p1, z0, z1 = (torch.randn(8, 32, dtype=torch.float64) for _ in range(4))
    symmetric = BYOLLoss()(p0, p1, z0, z1)
    per_view = byol_loss(p0, z1) + byol_loss(p1, z0)
    assert torch.allclose(symmetric, per_view, atol=1e-6, rtol=0)


def test_byol_loss_falls_when_a_predictor_learns_to_match_the_targets():
    torch.manual_seed(0)
    predictor = BYOLPredictionHead(16, 64, 16)
    x0, x1 = torch.randn(32, 16), torch.randn(32, 16)
    targets = torch.randn(16, 16)
    z0, z1 = x0 @ targets, x1 @ targets
    loss_fn = BYOLLoss()
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = loss_fn(predictor(x0), predictor(x1), z0, z1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_byol_loss_rejects_mismatched_shapes():
    import pytest

    with pytest.raises(ValueError, match="p and z"):
        byol_loss(torch.randn(4, 8), torch.randn(4, 7))
