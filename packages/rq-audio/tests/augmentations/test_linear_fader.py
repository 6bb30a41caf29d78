import pytest
import torch
from rq_audio.augmentations import RandomLinearFader


def test_adds_one_straight_line_per_sample_within_gain():
    x = torch.randn(32, 1, 8, 20)
    y = RandomLinearFader(gain=1.0)(x, generator=torch.Generator().manual_seed(0))
    line = y - x
    assert torch.allclose(line, line[:, :, :1].expand_as(line), atol=1e-5)  # same on every mel bin
    second_diff = line[..., 2:] - 2 * line[..., 1:-1] + line[..., :-2]
    assert second_diff.abs().max() < 1e-5  # linear in time
    assert line.abs().max() <= 1.0 + 1e-6
    assert line[:, 0, 0, 0].std() > 0.2  # drawn per sample


def test_zero_gain_is_identity_and_bad_input():
    x = torch.randn(2, 1, 4, 6)
    assert torch.equal(RandomLinearFader(gain=0.0)(x), x)
    with pytest.raises(ValueError, match="gain"):
        RandomLinearFader(gain=-1)
    with pytest.raises(ValueError, match=r"\(B, C, F, T\)"):
        RandomLinearFader()(torch.randn(4, 6))
