"""The DABS dataset contract and a dataset over arrays cached in one ``.npz`` file.

Every DABS dataset returns ``(index, *inputs, label)`` and has static ``spec()`` (one input
spec per input) and ``num_classes()`` (DABS ``src/datasets/*``); ``multilabel()`` says whether
the label is a 0/1 vector (x-rays: AUROC) instead of a class id.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from rq_dabs.specs import InputSpec

__all__ = ["ArraysDataset", "SPLITS", "check_dabs_item"]

SPLITS = ("train", "valid", "test")


def check_dabs_item(item: tuple, specs: list[InputSpec]) -> None:
    """Raise ValueError naming the problem if ``item`` breaks the ``(index, *inputs, label)``
    contract for ``specs``."""
    if not isinstance(item, tuple) or len(item) != len(specs) + 2:
        raise ValueError(
            f"expected (index, {len(specs)} inputs, label), "
            f"got {type(item).__name__} of {len(item)}"
        )
    if not isinstance(item[0], int):
        raise ValueError(f"the first element must be the int index, got {type(item[0]).__name__}")
    for x, spec in zip(item[1:-1], specs):
        if spec.input_type == "tokens":
            expected = (spec.seq_len,)
        elif spec.input_type == "1d":
            expected = (spec.seq_len, spec.in_channels)
        else:
            expected = (spec.in_channels, *spec.input_size)
        if tuple(x.shape) != expected:
            raise ValueError(
                f"input of spec {spec} has shape {tuple(x.shape)}, expected {expected}"
            )


class DomainDataset(Dataset):
    """The class-level half of the DABS contract, shared by every domain: its input specs,
    class count and label kind (subclasses set ``SPECS``, ``NUM_CLASSES``, ``MULTILABEL``)."""

    SPECS: ClassVar[list[InputSpec]] = []
    NUM_CLASSES: ClassVar[int] = 0
    MULTILABEL: ClassVar[bool] = False

    @classmethod
    def spec(cls) -> list[InputSpec]:
        return list(cls.SPECS)

    @classmethod
    def num_classes(cls) -> int:
        return cls.NUM_CLASSES

    @classmethod
    def multilabel(cls) -> bool:
        return cls.MULTILABEL


class ArraysDataset(DomainDataset):
    """A domain stored as arrays in one ``.npz``: ``x{i}_{split}`` per input i, ``y_{split}``.

    Subclasses set ``SPECS``, ``NUM_CLASSES`` (and ``MULTILABEL``) and know how to build the
    file; this class serves the DABS contract from it.
    """

    FILE_NAME: ClassVar[str] = "domain.npz"

    def __init__(self, path: str | Path, split: str = "train") -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        path = Path(path)
        if path.is_dir():
            path = path / self.FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; build it first ({type(self).__name__}.build)"
            )
        with np.load(path) as data:
            self.inputs = [torch.from_numpy(data[f"x{i}_{split}"]) for i in range(len(self.SPECS))]
            self.labels = torch.from_numpy(data[f"y_{split}"])
        self.split = split
        n = len(self.labels)
        if any(len(x) != n for x in self.inputs):
            raise ValueError(f"{path}: inputs and labels of split {split!r} have different lengths")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple:
        label = self.labels[index]
        return (
            int(index),
            *[x[index] for x in self.inputs],
            label if self.MULTILABEL else int(label),
        )
