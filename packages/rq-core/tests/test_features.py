import numpy as np
import pytest
import torch
from rq_core.features import extract_features
from torch import nn


def test_runs_in_eval_mode_without_gradients_and_restores_each_modules_mode():
    encoder = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.9))
    head = nn.Linear(4, 2).eval()
    encoder.train()
    x = torch.randn(10, 3)
    loader = [(x[:6], torch.arange(6)), (x[6:], torch.arange(6, 10))]
    seen = []

    def encode(batch):
        out = encoder(batch[0])
        seen.append(out.requires_grad)
        return {"features": out, "labels": batch[1]}

    out = extract_features(encode, loader, modules=[encoder, head], progress=False)
    assert encoder.training and not head.training, "each module's mode is restored"
    assert seen == [False, False]
    expected = encoder[0](x).detach().numpy()  # dropout is off in eval mode
    assert np.allclose(out["features"], expected, atol=1e-6)
    assert out["labels"].tolist() == list(range(10))


def test_a_plain_array_output_and_half_precision_become_float32_numpy():
    loader = [torch.ones(2, 3, dtype=torch.bfloat16), torch.zeros(1, 3, dtype=torch.bfloat16)]
    out = extract_features(lambda b: b * 2, loader, progress=False)
    assert out.dtype == np.float32 and out.shape == (3, 3) and out[0, 0] == 2


def test_modes_are_restored_when_encode_fails_and_empty_loaders_are_refused():
    net = nn.Linear(2, 2).train()

    def broken(batch):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        extract_features(broken, [torch.ones(1, 2)], modules=net, progress=False)
    assert net.training
    with pytest.raises(ValueError, match="no batches"):
        extract_features(lambda b: b, [], progress=False)
