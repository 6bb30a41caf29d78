"""RandomizedQuantization: the module wrapper (construction checks, replay, options)."""

import pytest
import torch
from rq_core import RandomizedQuantization, randomized_quantize


def test_replay_with_stored_params_gives_the_same_output():
    aug = RandomizedQuantization(num_bins=8)
    x = torch.randn(4, 3, 16, 16)
    y = aug(x)
    assert torch.equal(aug(x, params=aug._params), y)
    assert not torch.equal(aug(x), y)  # a fresh call draws fresh params


def test_module_matches_the_function_for_the_same_generator_state():
    aug = RandomizedQuantization(
        num_bins=5, channel_dim=-1, collapse="middle", spacing="random", p=0.7
    )
    x = torch.randn(6, 10, 4)
    a = aug(x, generator=torch.Generator().manual_seed(3))
    b = randomized_quantize(
        x, 5, channel_dim=-1, collapse="middle", p=0.7, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b)


def test_packed_points_through_the_module():
    aug = RandomizedQuantization(num_bins=30, channel_dim=-1)
    pts = torch.rand(50, 3)
    seg = torch.arange(50) // 20
    y = aug(pts, segment_ids=seg)
    assert aug._params.num_samples == 3
    for s in range(3):
        for c in range(3):
            assert y[seg == s, c].unique().numel() <= 30


def test_straight_through_module_passes_gradients():
    aug = RandomizedQuantization(num_bins=4, straight_through=True)
    x = torch.randn(2, 3, 5, requires_grad=True)
    aug(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize(
    "kwargs,exc",
    [
        ({"num_bins": 0}, ValueError),
        ({"num_bins": 4, "channel_dim": 0}, ValueError),
        ({"num_bins": 4, "collapse": "edge"}, ValueError),
        ({"num_bins": 4, "p": 2.0}, ValueError),
        ({"num_bins": "8"}, TypeError),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs, exc):
    with pytest.raises(exc):
        RandomizedQuantization(**kwargs)


def test_repr_names_the_settings():
    assert "num_bins=8" in repr(RandomizedQuantization(8))
