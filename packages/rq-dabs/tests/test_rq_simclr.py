import torch
from rq_dabs.algorithms import RQSimCLR
from rq_dabs.encoder import DomainAgnosticTransformer
from rq_dabs.specs import Input1dSpec


def _embedding_grads(model):
    return [p.grad for p in model.embed_modules.parameters()]


def test_embedding_gets_no_gradient_through_rq(sensor_model):
    loss, _ = RQSimCLR(num_bins=8, gather_distributed=False).loss(
        sensor_model, [torch.randn(8, 20, 3)]
    )
    loss.backward()
    grads = _embedding_grads(sensor_model)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)
    # ...while the rest of the encoder does learn.
    assert torch.count_nonzero(sensor_model.pos_embedding.grad) > 0
    assert torch.count_nonzero(sensor_model.blocks[0].mlp[0].weight.grad) > 0


def test_straight_through_trains_the_embedding(sensor_model):
    algo = RQSimCLR(num_bins=8, straight_through=True, gather_distributed=False)
    assert algo.trains_embedding
    loss, _ = algo.loss(sensor_model, [torch.randn(8, 20, 3)])
    loss.backward()
    grads = _embedding_grads(sensor_model)
    assert all(g is not None and torch.count_nonzero(g) > 0 for g in grads)


def test_views_are_quantized_per_embedding_dim_over_tokens(sensor_model):
    algo = RQSimCLR(num_bins=3)
    tokens = sensor_model.embed([torch.randn(2, 20, 3)])
    q = algo.quantize(tokens, torch.Generator().manual_seed(0))
    for s in range(2):
        for d in range(tokens.shape[-1]):
            assert q[s, :, d].unique().numel() <= 3


def test_simclr_rq_steps_reduce_the_loss():
    torch.manual_seed(0)
    from rq_dabs.encoder import TransformerConfig

    model = DomainAgnosticTransformer(
        [Input1dSpec(20, 5, 3)],
        TransformerConfig(
            dim=32,
            depth=1,
            heads=2,
            dim_head=16,
            mlp_dim=64,
            out_dim=16,
            dropout=0.0,
            emb_dropout=0.0,
        ),
    )
    algo = RQSimCLR(num_bins=8, gather_distributed=False)
    params = [p for n, p in model.named_parameters() if not n.startswith("embed_modules")]
    opt = torch.optim.AdamW(params, lr=3e-3)
    batch = [torch.randn(32, 20, 3, generator=torch.Generator().manual_seed(1))]
    g = torch.Generator().manual_seed(2)
    losses = []
    for _ in range(25):
        loss, _ = algo.loss(model, batch, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.2, losses
