import pytest
import torch
from rq_core.heads import BYOLPredictionHead, BYOLProjectionHead, MLPHead, SimCLRProjectionHead
from torch import nn


def _linear_sizes(head: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in head.modules() if isinstance(m, nn.Linear)]


def test_byol_heads_have_the_papers_sizes_and_layers():
    projection = BYOLProjectionHead(2048)
    prediction = BYOLPredictionHead()
    assert _linear_sizes(projection) == [(2048, 4096), (4096, 256)]
    assert _linear_sizes(prediction) == [(256, 4096), (4096, 256)]
    kinds = [type(m) for m in projection.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert projection(torch.randn(3, 2048)).shape == (3, 256)


def test_simclr_head_defaults_to_128_and_optional_batch_norm():
    head = SimCLRProjectionHead(32, 64)
    assert _linear_sizes(head) == [(32, 64), (64, 128)]
    assert any(isinstance(m, nn.BatchNorm1d) for m in head.modules())
    without = SimCLRProjectionHead(32, 64, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in without.modules())
    # Without a following norm, the first linear keeps its bias.
    assert without.layers[0].bias is not None and head.layers[0].bias is None


def test_mlp_head_is_built_from_blocks_and_trains():
    torch.manual_seed(0)
    head = MLPHead([(4, 8, nn.BatchNorm1d(8), nn.ReLU()), (8, 2, None, None)])
    x, target = torch.randn(16, 4), torch.randn(16, 2)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    losses = []
    for _ in range(20):
        loss = nn.functional.mse_loss(head(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([], "at least one"),
        ([(4, 8, None, None), (9, 2, None, None)], "takes 9 features but block 0 gives 8"),
        ([(0, 8, None, None)], "sizes must be >= 1"),
        ([(4, 8, None)], "must be"),
    ],
)
def test_mlp_head_rejects_bad_blocks(blocks, message):
    with pytest.raises(ValueError, match=message):
        MLPHead(blocks)


def test_head_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"expects \(batch, 16\)"):
        BYOLPredictionHead(16, 32, 8)(torch.randn(2, 15))
