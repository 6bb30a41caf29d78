import pytest
import torch
from rq_audio.learner import BYOLA, MIXUP_AUGMENTATIONS, RQ_AUGMENTATIONS


def _small(**kw):
    return BYOLA(
        feature_dim=64, projection_hidden_dim=64, projection_dim=32, encoder_channels=8, **kw
    )


def test_defaults_are_the_papers():
    m = BYOLA()
    assert (
        m.encoder.d == 2048
        and m.hparams.projection_hidden_dim == 4096
        and m.hparams.projection_dim == 256
    )
    assert m.ema_decay == 0.99 and m.lr == 3e-4
    assert m.hparams.augmentations[-1] == {"name": "rq", "num_bins": 5, "channel_mode": "sample"}
    assert MIXUP_AUGMENTATIONS[0]["ratio"] == 0.4 and MIXUP_AUGMENTATIONS[0]["memory_size"] == 2048
    assert RQ_AUGMENTATIONS[0]["name"] == "random_resize_crop"


def test_views_are_post_normalized_and_differ():
    m = _small()
    v0, v1 = m.make_views(torch.randn(4, 15200) * 0.1)
    assert v0.shape == (4, 1, 64, 96) and not torch.equal(v0, v1)
    both = torch.cat([v0, v1])
    assert abs(float(both.mean())) < 1e-4 and abs(float(both.std()) - 1) < 1e-3


def test_training_steps_reduce_the_loss_and_move_the_target():
    torch.manual_seed(0)
    m = _small()
    wav = torch.randn(8, 8000) * 0.1  # 0.5 s clips keep the test fast
    opt = torch.optim.Adam(
        [*m.encoder.parameters(), *m.projector.parameters(), *m.predictor.parameters()], lr=1e-3
    )
    target_before = [p.clone() for p in m.target_encoder.parameters()]
    assert not any(p.requires_grad for p in m.target_encoder.parameters())
    losses = []
    for step in range(12):
        loss = m.training_step(wav, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.on_train_batch_end(None, None, step)
        losses.append(float(loss.detach()))
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3
    assert any(not torch.equal(a, b) for a, b in zip(target_before, m.target_encoder.parameters()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="ema_decay"):
        _small(ema_decay=1.5)
    with pytest.raises(ValueError, match="unknown name"):
        _small(augmentations=[{"name": "nope"}])
