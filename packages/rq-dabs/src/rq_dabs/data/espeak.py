"""Spoken words from libespeak-ng through ctypes, for the embedded speech domain.

The library and its voices come from the ``espeakng-loader`` wheel (shared/DATA.md: spoken
words, Speech-Commands-like). espeak-ng's C API (speak_lib.h): ``espeak_Initialize`` with
AUDIO_OUTPUT_SYNCHRONOUS (2) returns the output rate (22,050 Hz, int16 mono); a synth callback
receives the samples; ``espeak_SetVoiceByName("en-us+m3")`` picks accent + voice variant and
``espeak_SetParameter`` (espeakRATE = 1, espeakPITCH = 3) words per minute and pitch. rq-audio
has its own copy of this driver: modality packages never import each other (ARCHITECTURE.md).
The library keeps global state, so there is one :class:`Espeak` per process.
"""

from __future__ import annotations

import ctypes

import numpy as np

__all__ = ["Espeak"]

_SYNCHRONOUS, _RATE, _PITCH = 2, 1, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Espeak:
    """``say(text, voice, rate, pitch)`` -> float32 samples in [-1, 1] at :attr:`sample_rate`."""

    _instance: Espeak | None = None

    def __new__(cls) -> Espeak:
        if cls._instance is None:
            instance = super().__new__(cls)
            instance._start()
            cls._instance = instance
        return cls._instance

    def _start(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:
            raise ImportError("the embedded speech domain needs espeakng-loader (pip install espeakng-loader)") from err
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: C holds only the pointer
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate})")
        self.sample_rate = int(rate)
        self.lib.espeak_SetSynthCallback(self._callback)

    def say(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self._chunks.clear()
        data = text.encode() + b"\0"
        rc = self.lib.espeak_Synth(data, len(data), 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        if rc != 0 or not self._chunks:
            raise RuntimeError(f"espeak_Synth failed for {text!r} with {voice} ({rc})")
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0
