"""Images & text of DABS: MSCOCO 2017 (pretraining: image + caption; 80-class transfer),
its mismatched-caption transfer, and VQA v1 multiple choice (DABS
``src/datasets/captioned_images/{mscoco,vqa}.py``). Two inputs per item: a 224 px image in
patches of 16 and 32 WordPiece ids (``SEQ_LEN = 32``, the bert-base-uncased vocabulary of
``ROOT/text/vocab.txt``, as the text domains), concatenated along the token axis by the model.

Image transform as DABS: ``Resize((640, 480))`` (height 640, width 480), ``CenterCrop(480)``,
``Resize((224, 224))``. Layout as ``data_scripts/dabs/captioned_images.py`` extracts it:
``ROOT/captioned_images/mscoco/{train2017,val2017,annotations}`` and
``ROOT/captioned_images/vqa/{train2014,val2014,annotations,mscoco_*2014_annotations.json,
MultipleChoice_mscoco_*2014_questions.json}``. DABS trains on train and scores on val; our
``valid`` is a seeded 5 % of train held out of ``train``. DABS's random swaps are seeded
here (``random.Random(42)``) so that every run sees the same pairs.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from rq_dabs.data.base import SPLITS, DomainDataset
from rq_dabs.data.text import VOCAB_SIZE, load_tokenizer
from rq_dabs.specs import Input2dSpec, InputTokensSpec

__all__ = ["MSCOCO", "VQA", "MismatchedCaption", "coco_image"]

SEQ_LEN = 32


def coco_image(path: Path) -> torch.Tensor:
    """DABS's captioned-image transform: (3, 224, 224) in [0, 1]."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB").resize((480, 640), Image.BILINEAR)
        image = image.crop((0, 80, 480, 560)).resize((224, 224), Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _holdout(items: list, split: str, fraction: float = 0.05, seed: int = 0) -> list:
    if split == "test":
        return items
    order = np.random.default_rng(seed).permutation(len(items))
    k = max(1, round(len(items) * fraction)) if len(items) > 1 else 0
    keep = np.sort(order[:k] if split == "valid" else order[k:])
    return [items[i] for i in keep]


class _Captioned(DomainDataset):
    """Items ``(image path, texts, label)``; returns ``(index, image, ids, label)``."""

    SPECS: ClassVar[list] = [Input2dSpec(224, 16, 3), InputTokensSpec(SEQ_LEN, VOCAB_SIZE)]
    NUM_CLASSES: ClassVar[int] = 1
    FOLDER: ClassVar[str] = ""
    SCRIPT_SET: ClassVar[str] = ""

    def __init__(self, root: str | Path, split: str = "train", *, backend: str = "auto") -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.folder = Path(root) / "captioned_images" / self.FOLDER
        self.tokenizer = load_tokenizer(root, backend, max_length=SEQ_LEN)
        self.skipped = 0
        self.items: list[tuple[Path, tuple[str, ...], int]] = self._items(split)
        if not self.items:
            raise FileNotFoundError(
                f"no items for split {split!r} under {self.folder}: run "
                f"data_scripts/dabs/captioned_images.py --only {self.SCRIPT_SET}"
            )

    def _items(self, split: str) -> list[tuple[Path, tuple[str, ...], int]]:
        raise NotImplementedError

    def _json(self, path: Path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: "
                f"run data_scripts/dabs/captioned_images.py --only {self.SCRIPT_SET}"
            )
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple:
        for offset in range(len(self.items)):
            path, texts, label = self.items[(index + offset) % len(self.items)]
            try:
                image = coco_image(path)
            except (OSError, ValueError) as err:
                self.skipped += 1
                warnings.warn(f"skipping unreadable image {path}: {err}", stacklevel=2)
                if self.skipped > max(10, len(self.items) // 2):
                    raise RuntimeError(
                        f"{self.skipped} unreadable images in {self.folder}"
                    ) from err
                continue
            ids = torch.tensor(self.tokenizer.encode(*texts), dtype=torch.long)
            return (int(index), image, ids, label)
        raise RuntimeError(f"no readable image in {self.folder}")


class MSCOCO(_Captioned):
    """COCO 2017 images with one caption each and an object category as label (80 classes;
    DABS keeps the last caption and the last instance annotation of each image)."""

    NUM_CLASSES = 80
    FOLDER = "mscoco"
    SCRIPT_SET = "mscoco"

    def _items(self, split: str) -> list[tuple[Path, tuple[str, ...], int]]:
        part = "val2017" if split == "test" else "train2017"
        instances = self._json(self.folder / "annotations" / f"instances_{part}.json")
        category = {c["id"]: i for i, c in enumerate(instances["categories"])}
        labels = {a["image_id"]: category[a["category_id"]] for a in instances["annotations"]}
        del instances
        captions = {
            c["image_id"]: c["caption"]
            for c in self._json(self.folder / "annotations" / f"captions_{part}.json")[
                "annotations"
            ]
        }
        items = [
            (self.folder / part / f"{image_id:012d}.jpg", (caption,), labels[image_id])
            for image_id, caption in captions.items()
            if image_id in labels
        ]
        return _holdout(items, split)


class MismatchedCaption(MSCOCO):
    """MSCOCO transfer: with probability 1/2 an image's caption is another's (label 0), else
    its own (label 1); the swapped captions are rolled among themselves (DABS
    ``MismatchedCaption.static_swap``, ``random.seed(42)``)."""

    NUM_CLASSES = 1

    def _items(self, split: str) -> list[tuple[Path, tuple[str, ...], int]]:
        items = super()._items(split)
        rng = random.Random(42)
        swapped = [i for i in range(len(items)) if rng.random() < 0.5]
        labels = [1] * len(items)
        for i in swapped:
            labels[i] = 0
        captions = [texts for _, texts, _ in items]
        if swapped:
            roll = rng.randint(1, len(swapped))
            for old, new in zip(swapped, swapped[roll:] + swapped[:roll]):
                captions[old] = items[new][1]
        return [(path, captions[i], labels[i]) for i, (path, _, _) in enumerate(items)]


class VQA(_Captioned):
    """VQA v1 multiple choice on COCO 2014: image + (question, answer) ids; with probability
    1/2 the answer is replaced by a wrong choice (label 0), else kept (label 1); questions whose
    answer is not among the choices are dropped (DABS ``VQA._static_swap``)."""

    FOLDER = "vqa"
    SCRIPT_SET = "vqa"

    def _items(self, split: str) -> list[tuple[Path, tuple[str, ...], int]]:
        base = self.folder / "coco-vqa" if (self.folder / "coco-vqa").is_dir() else self.folder
        part = "val" if split == "test" else "train"
        files = {
            i["id"]: i["file_name"]
            for i in self._json(base / "annotations" / f"captions_{part}2014.json")["images"]
        }
        questions = self._json(base / f"MultipleChoice_mscoco_{part}2014_questions.json")[
            "questions"
        ]
        text = {q["question_id"]: (q["question"], q["multiple_choices"]) for q in questions}
        rng = random.Random(42)
        items = []
        for annotation in self._json(base / f"mscoco_{part}2014_annotations.json")["annotations"]:
            question, choices = text[annotation["question_id"]]
            answer = annotation["multiple_choice_answer"]
            if answer not in choices:
                continue
            label, wrong = 1, [c for c in choices if c != answer]
            if rng.random() < 0.5 and wrong:
                answer, label = rng.choice(wrong), 0
            items.append(
                (base / f"{part}2014" / files[annotation["image_id"]], (question, answer), label)
            )
        return _holdout(items, split)
