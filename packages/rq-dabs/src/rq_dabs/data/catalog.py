"""Domain catalog: name -> how to open its splits and how DABS scores its transfer.

Loss/metric/batch size per dataset are DABS ``conf/dataset/*.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from rq_dabs.data import image_folder as images
from rq_dabs.data.captioned import MSCOCO, VQA, MismatchedCaption
from rq_dabs.data.embedded import EMBEDDED_DOMAINS, build_embedded_domain, cache_root
from rq_dabs.data.image_folder import CIFAR10Small
from rq_dabs.data.pamap2 import PAMAP2
from rq_dabs.data.speech import (
    AudioMNIST,
    GoogleSpeechCommands,
    LibriSpeech,
    LibriSpeechTransfer,
)
from rq_dabs.data.text import GLUE_TASKS, WikiText103, glue_dataset_class
from rq_dabs.data.xray import ChestXray8, CheXpert

__all__ = ["DOMAINS", "DomainInfo", "open_domain"]


@dataclass(frozen=True)
class DomainInfo:
    """How to open one domain and score transfer on it."""

    name: str
    dataset_class: type
    #: (root, split) -> dataset; split in train/valid/test.
    opener: Callable[[Path, str], Dataset]
    loss: str = "cross_entropy"
    metric: str = "accuracy"
    #: True: built on demand into the cache (the embedded offline domains).
    embedded: bool = False
    description: str = ""


def _embedded(name: str, description: str) -> DomainInfo:
    cls = EMBEDDED_DOMAINS[name]
    return DomainInfo(
        name, cls, lambda root, split: cls(root, split), embedded=True, description=description
    )


DOMAINS: dict[str, DomainInfo] = {
    "digits_images": _embedded(
        "digits_images", "scikit-learn digits (real), natural-images stand-in"
    ),
    "basic_motions_sensor": _embedded(
        "basic_motions_sensor", "BasicMotions smartwatch IMU (real), sensor stand-in"
    ),
    "synthetic_markov_text": _embedded(
        "synthetic_markov_text", "synthetic Markov token sequences, text stand-in"
    ),
    "spoken_digits_speech": _embedded(
        "spoken_digits_speech",
        "espeak-ng spoken digits (synthetic speech), 32 x 32 log-mel, speech stand-in",
    ),
    # Real DABS sets, prepared under data_root by data_scripts/dabs/*.py.
    "cifar10_small": DomainInfo(
        "cifar10_small", CIFAR10Small, CIFAR10Small, description="CIFAR-10, 32 px / patch 4"
    ),
    "pamap2": DomainInfo("pamap2", PAMAP2, PAMAP2, description="PAMAP2, 320 x 52 in segments of 5"),
}


def _register(
    name: str, cls: type, description: str, loss: str = "cross_entropy", metric: str = "accuracy"
) -> None:
    DOMAINS[name] = DomainInfo(name, cls, cls, loss=loss, metric=metric, description=description)


_register("imagenet", images.ImageNet, "ImageNet (registration), 224 px / patch 16: pretraining")
_register(
    "imagenet_small", images.ImageNetSmall, "ImageNet (registration), 32 px / patch 4: pretraining"
)
# Natural-image transfer sets (DABS conf/dataset/<name>.yaml: cross_entropy / accuracy).
for _name, _cls, _what in [
    ("dtd", images.DTD, "DTD textures"),
    ("traffic_sign", images.TrafficSign, "GTSRB traffic signs"),
    ("vgg_flower", images.VGGFlower, "Oxford Flowers-102"),
    ("aircraft", images.Aircraft, "FGVC-Aircraft"),
]:
    _register(_name, _cls, f"{_what}, 224 px / patch 16")
    _small = getattr(images, _cls.__name__ + "Small")
    _register(f"{_name}_small", _small, f"{_what}, 32 px / patch 4 (transfer from cifar10_small)")


# Text: WikiText-103 pretraining, GLUE transfer (DABS conf/dataset/<task>.yaml loss / metric).
_register("wikitext103", WikiText103, "WikiText-103 lines as 128 WordPiece ids: pretraining")
for _task, _info in GLUE_TASKS.items():
    _register(
        _task,
        glue_dataset_class(_task),
        f"GLUE {_task}, 128 WordPiece ids",
        _info.loss,
        _info.metric,
    )

# Speech: 224 x 224 log-mel images, patch 16 (DABS conf/dataset: cross_entropy / accuracy).
_register(
    "librispeech", LibriSpeech, "LibriSpeech 960 h, log-mel 224 x 224 / patch 16: pretraining"
)
_register(
    "librispeech_transfer",
    LibriSpeechTransfer,
    "LibriSpeech dev-clean speakers (40), log-mel 224 x 224",
)
_register(
    "google_speech",
    GoogleSpeechCommands,
    "Speech Commands v0.02 (35 words + noise), log-mel 224 x 224",
)
_register("audio_mnist", AudioMNIST, "AudioMNIST spoken digits, log-mel 224 x 224")

# Chest x-rays: multi-label, binary cross-entropy / AUROC (DABS conf/dataset/{xray8,chexpert}.yaml).
_register(
    "chexpert",
    CheXpert,
    "CheXpert (registration), 224 px / patch 16: pretraining",
    "binary_cross_entropy",
    "auroc",
)
_register(
    "xray8",
    ChestXray8,
    "ChestX-ray8, 8 pathologies, 224 px / patch 16",
    "binary_cross_entropy",
    "auroc",
)

# Images & text: a 224 px image and 32 WordPiece ids (DABS
# conf/dataset/{mscoco,mismatched_caption,vqa}.yaml).
_register("mscoco", MSCOCO, "MSCOCO 2017 image + caption (80 categories): pretraining")
_register(
    "mismatched_caption",
    MismatchedCaption,
    "MSCOCO caption matches its image?",
    "binary_cross_entropy",
)
_register("vqa", VQA, "VQA v1 multiple choice: is the answer right?", "binary_cross_entropy")


def open_domain(name: str, split: str, data_root: str | Path | None = None) -> Dataset:
    """Open split ``split`` of domain ``name``; embedded domains are built into the cache
    (``data_root`` or ``$RQ_CACHE/dabs``) the first time."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose from {sorted(DOMAINS)}")
    info = DOMAINS[name]
    root = Path(data_root) if data_root else cache_root()
    if info.embedded:
        return info.opener(build_embedded_domain(name, root), split)
    return info.opener(root, split)
