"""Images in a folder with ``metadata.csv`` (``file_name,label,split``), as the data scripts
write them; resized to the spec's size, in [0, 1].

DABS's transforms are ``Resize(INPUT_SIZE)`` with a (h, w) pair, then ``CenterCrop`` and
``ToTensor`` (``src/datasets/natural_images/*.py``): the pair makes the resize exact, so the
image is squashed to the size (the crop is a no-op). We do the same. Aircraft images are first
cropped to their bounding box (DABS ``aircraft.py``): optional ``box`` column, "x0 y0 x1 y1".
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from rq_dabs.data.base import SPLITS, DomainDataset
from rq_dabs.specs import Input2dSpec

__all__ = [
    "CIFAR10Small",
    "DTD",
    "Aircraft",
    "ImageNet",
    "ImageNetSmall",
    "AircraftSmall",
    "DTDSmall",
    "ImageFolderDomain",
    "TrafficSign",
    "TrafficSignSmall",
    "VGGFlower",
    "VGGFlowerSmall",
    "read_metadata",
]


def read_metadata(path: Path, split: str, extra: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Rows ``(file_name, label, *extra)`` of ``split`` from a ``file_name,label,split`` CSV
    (a missing ``extra`` column reads as "")."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the domain's script in data_scripts/dabs first"
        )
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file_name", "label", "split"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}")
        return [
            (r["file_name"], r["label"], *(r.get(k) or "" for k in extra))
            for r in reader
            if r["split"] == split
        ]


class ImageFolderDomain(DomainDataset):
    """Base of image domains read from ``ROOT / FOLDER / metadata.csv``.

    Labels are the class names listed in ``CLASSES`` or, when ``CLASSES`` is empty, class
    indices in ``[0, NUM_CLASSES)`` (single-label). An unreadable image is skipped with a
    warning and counted in ``self.skipped``; most files failing is an error.
    """

    FOLDER: ClassVar[str] = ""
    CLASSES: ClassVar[tuple[str, ...]] = ()
    NUM_CLASSES: ClassVar[int] = 0
    SPECS: ClassVar[list[Input2dSpec]] = []
    SCRIPT: ClassVar[str] = "natural_images.py"

    def __init__(self, root: str | Path, split: str = "train") -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.folder = Path(root) / self.FOLDER
        rows = self._rows(split)
        if self.CLASSES:
            index = {c: i for i, c in enumerate(self.CLASSES)}
        else:
            index = {str(i): i for i in range(self.num_classes())}
        unknown = sorted({row[1] for row in rows} - set(index))
        if unknown:
            raise ValueError(
                f"{self.folder} has labels outside this domain's {self.num_classes()} classes: "
                f"{unknown[:5]}"
            )
        self.items = [(name, index[label], box) for name, label, box in rows]
        self.skipped = 0

    def _rows(self, split: str) -> list[tuple[str, ...]]:
        """``(file_name, label, box)`` of ``split``, from ``metadata.csv``."""
        metadata = self.folder / "metadata.csv"
        if not metadata.is_file():
            raise FileNotFoundError(
                f"{metadata} not found: run data_scripts/dabs/{self.SCRIPT} first"
            )
        return read_metadata(metadata, split, ("box",))

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, name: str, box: str = "") -> torch.Tensor:
        from PIL import Image

        h, w = self.SPECS[0].input_size
        with Image.open(self.folder / name) as image:
            image = image.convert("RGB")
            if box:
                image = image.crop(tuple(int(v) for v in box.split()))
            if image.size != (w, h):
                image = image.resize((w, h), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    def __getitem__(self, index: int) -> tuple:
        for offset in range(len(self.items)):
            name, label, box = self.items[(index + offset) % len(self.items)]
            try:
                return (int(index), self._load(name, box), label)
            except (OSError, ValueError) as err:
                self.skipped += 1
                warnings.warn(f"skipping unreadable image {name}: {err}", stacklevel=2)
                if self.skipped > max(10, len(self.items) // 2):
                    raise RuntimeError(
                        f"{self.skipped} unreadable images in {self.folder}"
                    ) from err
        raise RuntimeError(f"no readable image in {self.folder}")

    @classmethod
    def num_classes(cls) -> int:
        return len(cls.CLASSES) or cls.NUM_CLASSES


class CIFAR10Small(ImageFolderDomain):
    """CIFAR-10 at 32 px in patches of 4 (DABS ``cifar10_small``, a pretraining set), written
    by ``data_scripts/dabs/natural_images.py``; splits: train (45k), valid (5k), test (10k)."""

    FOLDER = "natural_images/cifar10"
    CLASSES = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    SPECS = [Input2dSpec(32, 4, 3)]


# 224 px / patch 16 (DABS ``dtd.py``, ``traffic_sign.py``, ``vgg_flower.py``, ``aircraft.py``:
# INPUT_SIZE (224, 224), PATCH_SIZE (16, 16), IN_CHANNELS 3) and their ``*Small`` variants at
# 32 px / patch 4 (the same files), which take an encoder pretrained on ``cifar10_small``.
# ``metadata.csv`` is written by data_scripts/dabs/natural_images.py with DABS's splits; labels
# are class indices in DABS's order.
_224 = [Input2dSpec(224, 16, 3)]
_32 = [Input2dSpec(32, 4, 3)]


class ImageNet(ImageFolderDomain):
    """ILSVRC-2012 (registration needed; DABS's natural-image pretraining set, ``imagenet.py``:
    224 px / patch 16): ``ROOT/natural_images/imagenet/{train,val}/<wnid>/*.JPEG``, labels the
    sorted wnids of ``train``. Splits: train = ``train/``; valid and test = ``val/``."""

    FOLDER = "natural_images/imagenet"
    NUM_CLASSES = 1000
    SPECS = _224
    EXTENSIONS = (".jpeg", ".jpg", ".png")

    def _rows(self, split: str) -> list[tuple[str, ...]]:
        train = self.folder / "train"
        if not train.is_dir():
            raise FileNotFoundError(
                f"{train} not found: see `python data_scripts/dabs/natural_images.py --list`"
            )
        wnids = sorted(d.name for d in train.iterdir() if d.is_dir())
        part = self.folder / ("train" if split == "train" else "val")
        rows = []
        for label, wnid in enumerate(wnids):
            for path in sorted((part / wnid).glob("*")):
                if path.suffix.lower() in self.EXTENSIONS:
                    rows.append((path.relative_to(self.folder).as_posix(), str(label), ""))
        return rows


class ImageNetSmall(ImageNet):
    """ImageNet at 32 px / patch 4 (the size of DABS's ``*_small`` transfer sets)."""

    SPECS = _32


class DTD(ImageFolderDomain):
    """Describable Textures, 47 classes; DABS train = train1 + val1, test = test1 (here
    valid = val1)."""

    FOLDER = "natural_images/dtd"
    NUM_CLASSES = 47
    SPECS = _224


class DTDSmall(DTD):
    SPECS = _32


class TrafficSign(ImageFolderDomain):
    """GTSRB training images, 43 classes, 80/20 per class (DABS ``traffic_sign.py``)."""

    FOLDER = "natural_images/traffic_sign"
    NUM_CLASSES = 43
    SPECS = _224


class TrafficSignSmall(TrafficSign):
    SPECS = _32


class VGGFlower(ImageFolderDomain):
    """Oxford Flowers-102, 80/20 per class (DABS ``vgg_flower.py``)."""

    FOLDER = "natural_images/vgg_flower"
    NUM_CLASSES = 102
    SPECS = _224


class VGGFlowerSmall(VGGFlower):
    SPECS = _32


class Aircraft(ImageFolderDomain):
    """FGVC-Aircraft variants cropped to their box; DABS train = trainval, test = test.
    DABS declares ``NUM_CLASSES = 102`` for the 100 variants; kept for its head size."""

    FOLDER = "natural_images/aircraft"
    NUM_CLASSES = 102
    SPECS = _224


class AircraftSmall(Aircraft):
    SPECS = _32
