import pytest
import torch
from rq_audio.encoder import AudioNTT2020


def test_output_is_2048_d_for_any_length():
    model = AudioNTT2020().eval()
    assert model(torch.randn(2, 1, 64, 96)).shape == (2, 2048)
    assert model(torch.randn(1, 1, 64, 401)).shape == (1, 2048)  # a 4 s evaluation clip


def test_reference_parameter_names_and_sizes():
    names = dict(AudioNTT2020().named_parameters())
    assert names["features.0.weight"].shape == (64, 1, 3, 3)
    assert names["fc.0.weight"].shape == (2048, 64 * 8)
    assert names["fc.3.weight"].shape == (2048, 2048)


def test_pooling_is_max_plus_mean_over_time():
    model = AudioNTT2020(d=16, channels=8).eval()
    x = torch.randn(2, 1, 64, 40)
    frames = model.frame_features(x)
    torch.testing.assert_close(model(x), frames.max(1).values + frames.mean(1))


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="divisible by 8"):
        AudioNTT2020(n_mels=60)
    with pytest.raises(ValueError, match=r"\(B, 1, 64, T\)"):
        AudioNTT2020()(torch.randn(2, 64, 96))
    with pytest.raises(ValueError, match="8 time frames"):
        AudioNTT2020()(torch.randn(2, 1, 64, 4))
