"""The one driver of the espeak-ng speech synthesizer: text in, a float waveform out.

It knows no modality: the audio corpus (rq_audio) and the embedded DABS speech domain
(rq_dabs) both build spoken words with it, and modality packages never import each other,
so the driver lives here (docs/decisions.md). The library and its voices come from the
optional ``espeakng-loader`` wheel (``pip install 'rq-core[espeak]'``), loaded through ctypes.

espeak-ng's C API (``speak_lib.h``): ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS=2,
buflength, data_path, options)`` returns the output rate (22,050 Hz, int16 mono); a synth
callback receives the samples in chunks; ``espeak_SetVoiceByName("en-us+m3")`` picks an
accent and a voice variant; ``espeak_SetParameter(espeakRATE=1 | espeakPITCH=3, value, 0)``
sets words per minute and pitch (0-100). The library holds global state, so there is one
:class:`Espeak` per process.
"""

from __future__ import annotations

import ctypes

import numpy as np

__all__ = ["ENGLISH_ACCENTS", "VOICE_VARIANTS", "Espeak", "synthesize"]

# The English accents of the voices espeak-ng ships (``espeak-ng --voices=en``) and its voice
# variants (``espeak-ng --voices=variant``): a voice is ``accent+variant``, e.g. ``en-us+m3``.
# The speech generators of rq-audio and rq-dabs draw their speakers from these.
ENGLISH_ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-029",
    "en-us-nyc",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
VOICE_VARIANTS = (
    *("m1", "m2", "m3", "m4", "m5", "m6", "m7"),
    *("f1", "f2", "f3", "f4", "f5"),
    *("klatt", "klatt2", "klatt3"),
)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_RATE, _PITCH = 1, 3
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
MISSING = (
    "speech synthesis needs the espeak-ng library of the espeakng-loader wheel: "
    "pip install espeakng-loader (or 'rq-core[espeak]')"
)


class Espeak:
    """The process's espeak-ng engine; :meth:`say` -> float32 samples at :attr:`sample_rate`.

    Raises ImportError (with the install command) when espeakng-loader is missing.
    """

    _instance: Espeak | None = None
    sample_rate: int

    def __new__(cls) -> Espeak:
        if cls._instance is None:
            instance = super().__new__(cls)
            instance._start()
            cls._instance = instance
        return cls._instance

    def _start(self) -> None:
        try:
            import espeakng_loader
        except ImportError as error:
            raise ImportError(MISSING) from error
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: C holds only the pointer
        self.lib.espeak_Initialize.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate})")
        self.sample_rate = int(rate)
        self.lib.espeak_SetSynthCallback(self._callback)

    def say(self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> np.ndarray:
        """``text`` spoken by ``voice`` (``accent[+variant]``) at ``rate`` words per minute
        and ``pitch`` (0-100; 175 and 50 are espeak-ng's defaults): float32 ``(samples,)``
        in [-1, 1) (the engine's int16 divided by 32768, so ``x * 32768`` gives them back
        exactly). Raises ValueError for an unknown voice."""
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


def synthesize(
    text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50
) -> tuple[np.ndarray, int]:
    """``(waveform, sample_rate)``: :meth:`Espeak.say` and the engine's rate (22,050 Hz)."""
    engine = Espeak()
    return engine.say(text, voice, rate, pitch), engine.sample_rate
