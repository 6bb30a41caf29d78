import math

import pytest
import torch
import torch.nn.functional as F
from rq_dabs.algorithms.shed import ShED, shuffle_embeddings


def test_shuffle_moves_exactly_the_labelled_tokens():
    tokens = torch.randn(4, 20, 8)
    shuffled, moved = shuffle_embeddings(tokens, 0.15, generator=torch.Generator().manual_seed(1))
    assert moved.sum(1).tolist() == [math.ceil(20 * 0.15)] * 4
    changed = (shuffled != tokens).any(-1)
    assert torch.equal(changed, moved.bool())
    # Moved tokens are a permutation of the picked ones: the multiset of rows is unchanged.
    for b in range(4):
        assert torch.allclose(shuffled[b].sum(0), tokens[b].sum(0), atol=1e-5)


def test_shed_loss_is_cross_entropy_of_the_predictor_over_non_cls_tokens(tiny_config):
    from rq_dabs.encoder import DomainAgnosticTransformer
    from rq_dabs.specs import Input1dSpec

    sensor_model = DomainAgnosticTransformer([Input1dSpec(40, 2, 3)], tiny_config).eval()
    algo = ShED(dim=32)
    x = [torch.randn(3, 40, 3)]
    loss, metrics = algo.loss(sensor_model, x, generator=torch.Generator().manual_seed(0))
    tokens = sensor_model.embed(x)
    shuffled, moved = shuffle_embeddings(tokens, 0.15, generator=torch.Generator().manual_seed(0))
    logits = algo.predictor(sensor_model.encode(shuffled, prepool=True)[:, 1:])
    expected = F.cross_entropy(logits.reshape(-1, 2), moved.reshape(-1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert 0.0 <= metrics["detect_acc"].item() <= 1.0


def test_too_short_sequences_raise():
    with pytest.raises(ValueError, match="at least 2"):
        shuffle_embeddings(torch.randn(1, 4, 2), 0.15)
