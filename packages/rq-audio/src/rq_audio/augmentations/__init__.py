"""Batched, on-device augmentations of log-mel spectrograms (B, C, F, T)."""

from rq_audio.augmentations.chain import AUGMENTATIONS, AugmentationChain, build_augmentation_chain
from rq_audio.augmentations.linear_fader import RandomLinearFader
from rq_audio.augmentations.mixup import MixupBYOLA, log_mixup_exp
from rq_audio.augmentations.quantize import RandomQuantizeAudio
from rq_audio.augmentations.random_resize_crop import CropParams, RandomResizeCrop

__all__ = [
    "AUGMENTATIONS",
    "AugmentationChain",
    "CropParams",
    "MixupBYOLA",
    "RandomLinearFader",
    "RandomQuantizeAudio",
    "RandomResizeCrop",
    "build_augmentation_chain",
    "log_mixup_exp",
]
