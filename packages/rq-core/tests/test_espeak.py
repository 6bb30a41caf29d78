"""rq_core.espeak: the one espeak-ng driver (text in, float waveform + sample rate out)."""

import sys

import numpy as np
import pytest
from rq_core import espeak


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(espeak.Espeak, "_instance", None)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import raises ImportError
    with pytest.raises(ImportError, match="pip install espeakng-loader"):
        espeak.synthesize("one")


def test_a_word_becomes_a_float_waveform():
    pytest.importorskip("espeakng_loader")
    wave, rate = espeak.synthesize("seven", "en-us+f2", rate=150, pitch=60)
    assert rate == 22050
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.1 * rate < len(wave) < 2 * rate  # one word: a fraction of a second
    assert np.abs(wave).max() <= 1.0 and np.abs(wave).max() > 0.05  # not silence
    # int16 / 32768: scaling back gives integers (what rq_audio's corpus writes)
    assert np.array_equal(wave * 32768, np.round(wave * 32768))
    again, _ = espeak.synthesize("seven", "en-us+f2", rate=150, pitch=60)
    # espeak-ng's voices add a little random flutter, so samples differ between calls; the
    # timing (rate, words) does not
    assert len(again) == len(wave)
    slower, _ = espeak.synthesize("seven", "en-us+f2", rate=100, pitch=60)
    assert len(slower) > len(wave)  # the rate reaches the engine


def test_unknown_voice_is_a_value_error():
    pytest.importorskip("espeakng_loader")
    with pytest.raises(ValueError, match="no voice 'xx-nonexistent'"):
        espeak.synthesize("one", "xx-nonexistent")
