"""rq-audio: BYOL-A with randomized quantization (Wu et al., ICCV 2023, Sec. 5.3).

>>> import torch
>>> from rq_audio import AudioNTT2020, LogMelSpectrogram
>>> AudioNTT2020()(LogMelSpectrogram()(torch.zeros(2, 15200)).unsqueeze(1)).shape
torch.Size([2, 2048])
"""

from rq_audio.augmentations import (
    MixupBYOLA,
    RandomLinearFader,
    RandomQuantizeAudio,
    RandomResizeCrop,
    build_augmentation_chain,
)
from rq_audio.data.audio_io import AudioReadError, crop_or_pad, load_audio
from rq_audio.data.hdf5_cache import AudioClipDataset, prepare_audio_cache, read_cache_index
from rq_audio.data.metadata import MetadataRow, read_metadata, write_metadata
from rq_audio.data.tasks import TASKS, TaskSpec
from rq_audio.encoder import AudioNTT2020
from rq_audio.log_mel import LogMelSpectrogram
from rq_audio.normalization import NormalizeBatch, PrecomputedNorm, compute_norm_stats

__version__ = "0.1.0"

__all__ = [
    "TASKS",
    "AudioClipDataset",
    "AudioNTT2020",
    "AudioReadError",
    "LogMelSpectrogram",
    "MetadataRow",
    "MixupBYOLA",
    "NormalizeBatch",
    "PrecomputedNorm",
    "RandomLinearFader",
    "RandomQuantizeAudio",
    "RandomResizeCrop",
    "TaskSpec",
    "build_augmentation_chain",
    "compute_norm_stats",
    "crop_or_pad",
    "load_audio",
    "prepare_audio_cache",
    "read_cache_index",
    "read_metadata",
    "write_metadata",
]
