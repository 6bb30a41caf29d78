"""Log-mel spectrograms on the device, inside the training step.

BYOL-A v1 settings (nttcslab/byol-a config.yaml): 16 kHz, n_fft = win_length = 1024,
hop 160 (10 ms), 64 mel bins from 60 to 7800 Hz, power 2, then ``log(x + eps)`` with
eps = float32 machine epsilon (byol_a/dataset.py).

Backends:
- ``"nnaudio"``: nnAudio's MelSpectrogram (BYOL-A v2's on-device choice); its filterbank is
  librosa's (Slaney mel scale, Slaney area normalisation).
- ``"torchaudio"``: torchaudio's MelSpectrogram with ``filterbank="htk"`` (torchaudio's
  default, what BYOL-A v1's torchaudio path used) or ``filterbank="librosa"`` (Slaney scale
  and normalisation: the filterbank the released BYOL-A weights were trained with).

``nnaudio`` and ``torchaudio`` + ``filterbank="librosa"`` compute the same thing (tested).

>>> import torch
>>> LogMelSpectrogram()(torch.zeros(2, 15200)).shape
torch.Size([2, 64, 96])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["LogMelSpectrogram"]

Backend = Literal["nnaudio", "torchaudio"]
Filterbank = Literal["htk", "librosa"]


class LogMelSpectrogram(nn.Module):
    """Waveforms ``(B, N)`` (float, [-1, 1]) -> log-mel ``(B, n_mels, 1 + N // hop_length)``.

    Defaults are BYOL-A's (config.yaml). ``forward`` runs without autograd bookkeeping for
    the filterbank (it has no trainable parameters).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        win_length: int = 1024,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 60.0,
        f_max: float = 7800.0,
        backend: Backend = "nnaudio",
        filterbank: Filterbank = "htk",
    ) -> None:
        super().__init__()
        if backend not in ("nnaudio", "torchaudio"):
            raise ValueError(f"backend must be 'nnaudio' or 'torchaudio', got {backend!r}")
        if filterbank not in ("htk", "librosa"):
            raise ValueError(f"filterbank must be 'htk' or 'librosa', got {filterbank!r}")
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got {f_min}, {f_max}")
        self.backend = backend
        self.filterbank = filterbank if backend == "torchaudio" else "librosa"
        self.hop_length = hop_length
        self.n_mels = n_mels
        if backend == "nnaudio":
            from nnAudio.features import MelSpectrogram as NNAudioMel

            self.mel = NNAudioMel(
                sr=sample_rate,
                n_fft=n_fft,
                win_length=win_length,
                hop_length=hop_length,
                n_mels=n_mels,
                fmin=f_min,
                fmax=f_max,
                center=True,
                power=2.0,
                trainable_mel=False,
                trainable_STFT=False,
                verbose=False,
            )
        else:
            import torchaudio

            slaney = filterbank == "librosa"
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate,
                n_fft=n_fft,
                win_length=win_length,
                hop_length=hop_length,
                f_min=f_min,
                f_max=f_max,
                n_mels=n_mels,
                power=2.0,
                center=True,
                pad_mode="reflect",
                norm="slaney" if slaney else None,
                mel_scale="slaney" if slaney else "htk",
            )

    def forward(self, wav: Tensor) -> Tensor:
        if wav.ndim != 2:
            raise ValueError(f"expected waveforms (B, N), got shape {tuple(wav.shape)}")
        with torch.no_grad():
            mel = self.mel(wav.float())
        # float32 epsilon, as byol_a/dataset.py: keeps log finite on digital silence.
        return (mel + torch.finfo(torch.float32).eps).log()
