import pytest
import torch
from rq_audio.augmentations import RandomQuantizeAudio


def test_sample_mode_is_one_quantizer_per_spectrogram():
    x = torch.randn(4, 1, 16, 24)
    y = RandomQuantizeAudio(num_bins=5, channel_mode="sample")(
        x, generator=torch.Generator().manual_seed(0)
    )
    for i in range(4):
        assert y[i].unique().numel() <= 5
        assert y[i].min() >= x[i].min() and y[i].max() <= x[i].max()


def test_frequency_mode_is_one_quantizer_per_mel_bin():
    x = torch.randn(2, 1, 16, 24)
    y = RandomQuantizeAudio(num_bins=5, channel_mode="frequency")(
        x, generator=torch.Generator().manual_seed(0)
    )
    for i in range(2):
        for f in range(16):
            assert y[i, 0, f].unique().numel() <= 5
            assert y[i, 0, f].min() >= x[i, 0, f].min() and y[i, 0, f].max() <= x[i, 0, f].max()
        assert y[i].unique().numel() > 5  # bins differ between mel bins


def test_order_is_kept_and_p_zero_is_identity():
    x = torch.randn(2, 1, 8, 8)
    y = RandomQuantizeAudio(5)(x)
    order = x.flatten(1).argsort(dim=1)
    assert (y.flatten(1).gather(1, order).diff(dim=1) >= 0).all()  # monotone quantizer
    assert torch.equal(RandomQuantizeAudio(5, p=0.0)(x), x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="channel_mode"):
        RandomQuantizeAudio(5, channel_mode="time")
    with pytest.raises(ValueError, match=r"\(B, C, F, T\)"):
        RandomQuantizeAudio(5)(torch.randn(3, 8))
