"""Chest x-rays of DABS: ChestX-ray8 (NIH; transfer, 8 pathologies, multi-label, AUROC) and
CheXpert (registration; pretraining, 5 competition pathologies). DABS
``src/datasets/medical_images/{xray8,chexpert}.py``: ``Resize((224, 224))`` + ``ToTensor``
of the image converted to RGB, patch 16, 3 channels; the label a 0/1 vector.

ChestX-ray8 layout (``data_scripts/dabs/medical_images.py``): ``ROOT/medical_images/xray8/``
``images/*.png`` and ``Data_Entry_2017.csv`` (columns ``Image Index``, ``Finding Labels`` =
"Effusion|Mass" or "No Finding"). DABS splits the PNGs it finds 90/10 with
``RandomState(42)``; we sort the names first (DABS shuffles ``os.listdir`` order, which is
not reproducible) and hold out the last tenth of the 90 as valid. An image without a CSV row
is skipped with a warning and counted.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from rq_dabs.data.base import SPLITS
from rq_dabs.data.image_folder import ImageFolderDomain
from rq_dabs.specs import Input2dSpec

__all__ = ["CheXpert", "ChestXray8", "MultiLabelImages"]

XRAY8_PATHOLOGIES = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
)  # DABS xray8.py PATHOLOGIES: the 8 of the ChestX-ray8 paper

#: CheXpert CSV label columns (from column 5 on) and the 5 DABS selects (CHEXPERT_LABELS_IDX).
CHEXPERT_COLUMNS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
CHEXPERT_SELECTED = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")


class MultiLabelImages(ImageFolderDomain):
    """Images with a 0/1 label vector; ``self.items`` holds ``(file_name, label, box)``."""

    SPECS = [Input2dSpec(224, 16, 3)]
    MULTILABEL: ClassVar[bool] = True
    SCRIPT = "medical_images.py"

    def __init__(self, root: str | Path, split: str = "train") -> None:  # noqa: D107
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        torch.utils.data.Dataset.__init__(self)
        self.folder = Path(root) / self.FOLDER
        self.skipped = 0
        self.items = [
            (name, torch.as_tensor(label, dtype=torch.float32), "")
            for name, label in self._labelled(split)
        ]

    def _labelled(self, split: str) -> list[tuple[str, np.ndarray]]:
        raise NotImplementedError


class ChestXray8(MultiLabelImages):
    FOLDER = "medical_images/xray8"
    NUM_CLASSES = len(XRAY8_PATHOLOGIES)

    def _labelled(self, split: str) -> list[tuple[str, np.ndarray]]:
        table = self.folder / "Data_Entry_2017.csv"
        images = self.folder / "images"
        if not table.is_file() or not images.is_dir():
            raise FileNotFoundError(
                f"{images} and {table} are needed: run data_scripts/dabs/medical_images.py "
                "--metadata PATH/Data_Entry_2017.csv"
            )
        with open(table, newline="") as f:
            findings = {row["Image Index"]: row["Finding Labels"] for row in csv.DictReader(f)}
        names = np.array(sorted(n for n in os.listdir(images) if n.endswith(".png")))
        np.random.RandomState(42).shuffle(names)
        cut = int(len(names) * 0.9)
        train = names[:cut].tolist()
        n_valid = max(1, len(train) // 10) if len(train) > 1 else 0
        part = {
            "train": train[: len(train) - n_valid],
            "valid": train[len(train) - n_valid :],
            "test": names[cut:].tolist(),
        }[split]
        out, missing = [], []
        for name in part:
            if name not in findings:
                missing.append(name)
                continue
            present = set(findings[name].split("|"))
            out.append(
                (
                    f"images/{name}",
                    np.array([p in present for p in XRAY8_PATHOLOGIES], dtype=np.float32),
                )
            )
        if missing:
            self.skipped += len(missing)
            warnings.warn(
                f"{len(missing)} x-ray images have no row in {table} (e.g. {missing[0]}); skipped",
                stacklevel=3,
            )
            if len(missing) > len(out):
                raise ValueError(f"most images of split {split!r} have no row in {table}")
        return out


class CheXpert(MultiLabelImages):
    """CheXpert-v1.0-small (registration): ``ROOT/medical_images/chexpert/CheXpert-v1.0-small/
    {train,valid}.csv``; uncertain (-1) and blank labels count as negative (DABS). Splits:
    train = train.csv; valid and test = valid.csv."""

    FOLDER = "medical_images/chexpert"
    NUM_CLASSES = len(CHEXPERT_SELECTED)

    def _labelled(self, split: str) -> list[tuple[str, np.ndarray]]:
        base = next(
            (
                self.folder / d
                for d in ("CheXpert-v1.0", "CheXpert-v1.0-small")
                if (self.folder / d / "train.csv").is_file()
            ),
            None,
        )
        if base is None:
            raise FileNotFoundError(
                f"no CheXpert-v1.0(-small)/train.csv under {self.folder}: "
                "CheXpert needs registration, "
                "see `python data_scripts/dabs/medical_images.py --list`"
            )
        out = []
        with open(base / ("train.csv" if split == "train" else "valid.csv"), newline="") as f:
            for row in csv.DictReader(f):
                values = []
                for column in CHEXPERT_SELECTED:
                    raw = (row.get(column) or "").strip()
                    values.append(max(float(raw), 0.0) if raw else 0.0)
                path = row["Path"]
                # Paths in the CSV start with the folder name, relative to the chexpert folder.
                out.append((path, np.array(values, dtype=np.float32)))
        return out
