import torch
import torch.nn.functional as F
from rq_points.losses import MidNetLoss, PointClusterLoss, ShapeInstanceLoss


def test_shape_loss_matches_its_definition():
    torch.manual_seed(0)
    loss = ShapeInstanceLoss(6, 4, temperature=0.1)
    f, ids = torch.randn(3, 4), torch.tensor([1, 4, 5])
    bank = loss.bank.bank.clone()
    value, _ = loss(f, ids)
    expect = F.cross_entropy(F.normalize(f, dim=1) @ bank.T / 0.1, ids)
    torch.testing.assert_close(value, expect)
    mixed = F.normalize(0.5 * F.normalize(f, dim=1) + 0.5 * bank[ids], dim=1)
    torch.testing.assert_close(loss.bank.bank[ids], mixed)


def test_point_loss_matches_per_shape_definition_and_absent_clusters_stay():
    torch.manual_seed(0)
    K = 4
    loss = PointClusterLoss(num_shapes=3, num_clusters=K, dim=5)
    emb = torch.randn(7, 5)
    cluster = torch.tensor([0, 1, 1, -1, 2, 2, 0])
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    shape_ids = torch.tensor([2, 0])
    before = loss.bank.bank.clone().view(3, K, 5)
    value, _ = loss(emb, cluster, batch, shape_ids)
    valid = cluster >= 0
    f = F.normalize(emb[valid], dim=1)
    protos = before[shape_ids[batch[valid]]]  # (n, K, 5)
    logits = torch.einsum("nd,nkd->nk", f, protos) / 0.1
    torch.testing.assert_close(value, F.cross_entropy(logits, cluster[valid]))
    after = loss.bank.bank.view(3, K, 5)
    torch.testing.assert_close(after[2, 3], before[2, 3])  # cluster 3 of shape 2: absent
    torch.testing.assert_close(after[1], before[1])  # shape 1 not in the batch
    assert not torch.allclose(after[2, 1], before[2, 1])
    mean = F.normalize(f[1:3].sum(0), dim=0)  # cluster 1 of shape 2: leaves 1 and 2
    torch.testing.assert_close(after[2, 1], F.normalize(0.5 * before[2, 1] + 0.5 * mean, dim=0))


def test_losses_fall_on_a_toy_batch():
    torch.manual_seed(0)
    B, L, K = 8, 64, 5
    shape_net = torch.nn.Linear(10, 16)
    point_net = torch.nn.Linear(10, 8)
    loss = MidNetLoss(num_shapes=B, num_clusters=K, shape_dim=16, point_dim=8)
    x_shape, x_point = torch.randn(B, 10), torch.randn(L, 10)
    cluster = torch.randint(0, K, (L,))
    batch = torch.arange(L) % B
    opt = torch.optim.SGD(
        list(shape_net.parameters()) + list(point_net.parameters()), lr=0.5, momentum=0.9
    )
    values = []
    for _ in range(20):
        out = loss(shape_net(x_shape), torch.arange(B), point_net(x_point), cluster, batch)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        values.append(float(out.total))
    assert values[-1] < 0.5 * values[0]
    assert float(out.shape_accuracy) == 1.0
