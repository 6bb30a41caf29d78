import pytest
import torch
from rq_audio.normalization import NormalizeBatch, PrecomputedNorm, compute_norm_stats
from torch.utils.data import DataLoader, TensorDataset


def test_normalize_batch_per_channel():
    x = torch.randn(6, 2, 8, 10) * torch.tensor([3.0, 0.5]).view(1, 2, 1, 1) + torch.tensor(
        [5.0, -1.0]
    ).view(1, 2, 1, 1)
    y = NormalizeBatch()(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-5, rtol=0)
    assert torch.isfinite(NormalizeBatch()(torch.ones(2, 1, 4, 4))).all()  # constant: std clamped


def test_precomputed_norm_and_bad_std():
    norm = PrecomputedNorm(2.0, 4.0)
    torch.testing.assert_close(norm(torch.tensor([6.0])), torch.tensor([1.0]))
    assert set(dict(norm.named_buffers())) == {"mean", "std"}  # saved in checkpoints
    with pytest.raises(ValueError, match="std"):
        PrecomputedNorm(0.0, 0.0)


def test_norm_stats_match_direct_computation_and_respect_the_cap():
    wav = torch.randn(40, 100)
    square = lambda w: w * 3 + 1  # stands in for log-mel  # noqa: E731
    loader = DataLoader(TensorDataset(wav), batch_size=16)
    mean, std = compute_norm_stats(loader, square, progress=False)
    ref = square(wav).double()
    assert abs(mean - float(ref.mean())) < 1e-9
    assert abs(std - float(ref.std(unbiased=False))) < 1e-6
    mean10, _ = compute_norm_stats(loader, square, max_clips=10, progress=False)
    assert abs(mean10 - float(square(wav[:10]).double().mean())) < 1e-9
