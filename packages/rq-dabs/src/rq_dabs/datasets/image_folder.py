"""Images in a folder with ``metadata.csv`` (``file_name,label,split``), as the data scripts
write them; resized and center-cropped to the spec's size, in [0, 1] (DABS's transforms)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from rq_dabs.datasets.base import SPLITS
from rq_dabs.specs import Input2dSpec

__all__ = ["CIFAR10Small", "ImageFolderDomain", "read_metadata"]


def read_metadata(path: Path, split: str) -> list[tuple[str, str]]:
    """Rows ``(file_name, label)`` of ``split`` from a ``file_name,label,split`` CSV."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the domain's script in data_scripts/dabs first")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file_name", "label", "split"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}")
        return [(r["file_name"], r["label"]) for r in reader if r["split"] == split]


class ImageFolderDomain(Dataset):
    """Base of image domains read from ``ROOT / FOLDER / metadata.csv``.

    Labels are the class names listed in ``CLASSES`` (single-label). An unreadable image is
    skipped with a warning and counted in ``self.skipped``; most files failing is an error.
    """

    FOLDER: ClassVar[str] = ""
    CLASSES: ClassVar[tuple[str, ...]] = ()
    SPECS: ClassVar[list[Input2dSpec]] = []

    def __init__(self, root: str | Path, split: str = "train") -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.folder = Path(root) / self.FOLDER
        rows = read_metadata(self.folder / "metadata.csv", split)
        index = {c: i for i, c in enumerate(self.CLASSES)}
        unknown = sorted({label for _, label in rows} - set(index))
        if unknown:
            raise ValueError(f"{self.folder}/metadata.csv has labels outside {self.CLASSES}: {unknown[:5]}")
        self.items = [(name, index[label]) for name, label in rows]
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, name: str) -> torch.Tensor:
        from PIL import Image

        h, w = self.SPECS[0].input_size
        with Image.open(self.folder / name) as image:
            image = image.convert("RGB")
            scale = max(h / image.height, w / image.width)
            size = (max(w, round(image.width * scale)), max(h, round(image.height * scale)))
            image = image.resize(size, Image.BILINEAR)
            left, top = (size[0] - w) // 2, (size[1] - h) // 2
            image = image.crop((left, top, left + w, top + h))
            array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    def __getitem__(self, index: int) -> tuple:
        for offset in range(len(self.items)):
            name, label = self.items[(index + offset) % len(self.items)]
            try:
                return (int(index), self._load(name), label)
            except (OSError, ValueError) as err:
                self.skipped += 1
                warnings.warn(f"skipping unreadable image {name}: {err}", stacklevel=2)
                if self.skipped > max(10, len(self.items) // 2):
                    raise RuntimeError(f"{self.skipped} unreadable images in {self.folder}") from err
        raise RuntimeError(f"no readable image in {self.folder}")

    @classmethod
    def spec(cls) -> list[Input2dSpec]:
        return list(cls.SPECS)

    @classmethod
    def num_classes(cls) -> int:
        return len(cls.CLASSES)

    @classmethod
    def multilabel(cls) -> bool:
        return False


class CIFAR10Small(ImageFolderDomain):
    """CIFAR-10 at 32 px in patches of 4 (DABS ``cifar10_small``, a pretraining set), written
    by ``data_scripts/dabs/natural_images.py``; splits: train (45k), valid (5k), test (10k)."""

    FOLDER = "natural_images/cifar10"
    CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    SPECS = [Input2dSpec(32, 4, 3)]
