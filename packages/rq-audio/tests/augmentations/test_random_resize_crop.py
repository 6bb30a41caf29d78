import pytest
import torch
import torch.nn.functional as F
from rq_audio.augmentations import CropParams, RandomResizeCrop


def _reference_one(lms, top, left, h, w, canvas):
    """byol_a RandomResizeCrop.forward for one (C, F, T) sample with given crop parameters."""
    C, F_, T = lms.shape
    area = torch.zeros(C, *canvas, dtype=lms.dtype)
    y, x = (canvas[0] - F_) // 2, (canvas[1] - T) // 2
    area[:, y : y + F_, x : x + T] = lms
    crop = area[:, top : top + h, left : left + w]
    return F.interpolate(crop[None], size=(F_, T), mode="bicubic", align_corners=True)[0]


def test_shape_and_per_sample_draws():
    rrc = RandomResizeCrop()
    x = torch.randn(16, 1, 64, 96)
    y = rrc(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    p = rrc._params
    assert len(set(zip(p.height.tolist(), p.width.tolist()))) > 8  # every sample its own crop
    assert (p.height >= 1).all() and (p.height <= 64).all() and (p.width <= 144).all()
    assert (p.height >= int(0.6 * 64)).all() and (p.width >= int(0.6 * 96)).all()
    assert (p.top + p.height <= 64).all() and (p.left + p.width <= 144).all()


def test_matches_the_per_sample_reference_inside_the_crop():
    rrc = RandomResizeCrop()
    x = torch.randn(8, 1, 32, 48, dtype=torch.float64)
    y = rrc(x, generator=torch.Generator().manual_seed(1))
    p = rrc._params
    canvas = rrc.canvas_size(32, 48)
    for i in range(8):
        h, w = int(p.height[i]), int(p.width[i])
        ref = _reference_one(x[i], int(p.top[i]), int(p.left[i]), h, w, canvas)
        # Pixels whose bicubic taps all lie inside the rectangle must agree exactly; the rest
        # (within one source pixel of its edge) read the canvas instead (module docstring).
        rows = torch.linspace(0, 1, 32, dtype=torch.float64) * (h - 1)
        cols = torch.linspace(0, 1, 48, dtype=torch.float64) * (w - 1)
        inside = ((rows >= 1) & (rows <= h - 2))[:, None] & ((cols >= 1) & (cols <= w - 2))[None, :]
        assert inside.float().mean() > 0.8
        torch.testing.assert_close(y[i, 0][inside], ref[0][inside], atol=1e-9, rtol=0)


def test_identity_when_the_crop_is_the_whole_input():
    rrc = RandomResizeCrop(
        virtual_crop_scale=(1.0, 1.0), freq_scale=(1.0, 1.0), time_scale=(1.0, 1.0)
    )
    x = torch.randn(3, 1, 64, 96)
    torch.testing.assert_close(rrc(x), x, atol=1e-4, rtol=0)  # float32 bicubic at grid points


def test_replay_and_reproducible_draws():
    rrc = RandomResizeCrop()
    x = torch.randn(4, 1, 64, 96)
    y = rrc(x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(rrc(x, params=rrc._params), y)
    torch.testing.assert_close(rrc(x, generator=torch.Generator().manual_seed(3)), y)
    fixed = CropParams(*(torch.tensor([v]) for v in (0, 24, 64, 96)))
    torch.testing.assert_close(
        rrc(x[:1], params=fixed), x[:1], atol=1e-4, rtol=0
    )  # the centre, unscaled


def test_bad_arguments():
    with pytest.raises(ValueError, match="time_scale"):
        RandomResizeCrop(time_scale=(0.5, 0.9))
    with pytest.raises(ValueError, match="virtual_crop_scale"):
        RandomResizeCrop(virtual_crop_scale=(0.5, 1.0))
    with pytest.raises(ValueError, match=r"\(B, C, F, T\)"):
        RandomResizeCrop()(torch.randn(64, 96))
