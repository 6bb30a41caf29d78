"""Spoken words from libespeak-ng (the espeakng-loader wheel) through ctypes.

espeak-ng's C API (speak_lib.h): ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS=2, buflength,
data_path, options)`` returns the output rate (22,050 Hz); a synth callback receives int16
chunks; ``espeak_SetVoiceByName("en-us+m3")`` picks accent + voice variant;
``espeak_SetParameter(espeakRATE=1 | espeakPITCH=3, value, 0)`` sets words per minute and
pitch (0-100). The library holds global state: one :class:`EspeakSynth` per process.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

__all__ = ["ACCENTS", "VARIANTS", "EspeakSynth", "Speaker"]

ACCENTS = ("en-us", "en", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3")

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_RATE, _PITCH = 1, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class Speaker:
    accent: str
    variant: str
    rate: int  # words per minute
    pitch: int  # 0-100

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def name(self) -> str:
        return f"{self.accent}_{self.variant}_r{self.rate}_p{self.pitch}"


class EspeakSynth:
    """Text -> int16 samples at :attr:`sample_rate` (22,050 Hz) with a chosen speaker."""

    _instance: EspeakSynth | None = None

    def __new__(cls) -> EspeakSynth:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._init()
        return cls._instance

    def _init(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:
            raise ImportError(
                "the offline corpus needs espeakng-loader: pip install 'rq-audio[corpus]'"
            ) from e
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: C holds only the pointer
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate})")
        self.sample_rate = int(rate)
        self.lib.espeak_SetSynthCallback(self._callback)

    def say(self, text: str, speaker: Speaker) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(speaker.voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {speaker.voice!r}")
        self.lib.espeak_SetParameter(_RATE, int(speaker.rate), 0)
        self.lib.espeak_SetParameter(_PITCH, int(speaker.pitch), 0)
        self._chunks.clear()
        data = text.encode() + b"\0"
        rc = self.lib.espeak_Synth(data, len(data), 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        if rc != 0 or not self._chunks:
            raise RuntimeError(f"espeak_Synth failed for {text!r} with {speaker.voice} ({rc})")
        return np.concatenate(self._chunks)
