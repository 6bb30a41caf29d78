import numpy as np
import pytest
import torch
from rq_core.feature_cache import cached_features, extract_features
from torch import nn


def test_extract_features_runs_in_eval_mode_and_restores_training_mode():
    encoder = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.9))
    encoder.train()
    x = torch.randn(10, 3)
    loader = [(x[:6], torch.arange(6)), (x[6:], torch.arange(6, 10))]
    features, labels = extract_features(encoder, loader)
    assert encoder.training, "training mode is restored"
    expected = encoder[0](x).detach().numpy()  # dropout is off in eval mode
    assert np.allclose(features, expected, atol=1e-6) and labels.tolist() == list(range(10))


def test_extract_features_understands_dabs_batches_and_checks_shapes():
    loader = [(torch.arange(2), torch.ones(2, 5, 3), torch.tensor([1, 0]))]  # (index, x, label)
    features, labels = extract_features(lambda x: x.mean(1), loader)
    assert features.shape == (2, 3) and labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"\(batch, dim\)"):
        extract_features(lambda x: x, loader)
    with pytest.raises(ValueError, match="no batches"):
        extract_features(lambda x: x, [])


def test_cache_computes_once_per_key_and_leaves_no_temporary_file(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.full((3, 2), len(calls), np.float32), np.array([0, 1, 0])

    path = tmp_path / "cache" / "train.npz"
    first = cached_features(path, compute, key="a")
    again = cached_features(path, compute, key="a")
    assert len(calls) == 1 and np.array_equal(first[0], again[0])
    stale = cached_features(path, compute, key="b")
    assert len(calls) == 2 and stale[0][0, 0] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.npz"]
