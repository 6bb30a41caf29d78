"""Images & text: MSCOCO (+ mismatched captions) and VQA read from what
data_scripts/dabs/captioned_images.py extracts from tiny archives in the real layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rq_dabs.data.base import check_dabs_item
from rq_dabs.data.captioned import MSCOCO, VQA, MismatchedCaption
from rq_dabs.data.catalog import DOMAINS, open_domain

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "a",
    "cat",
    "dog",
    "on",
    "the",
    "mat",
    "what",
    "is",
    "it",
    "?",
    "yes",
    "no",
]


def _root(tmp_path):
    root = tmp_path / "root"
    (root / "text").mkdir(parents=True)
    (root / "text" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return root


def test_mscoco_and_mismatched_captions(tmp_path, dabs_data):
    captioned = dabs_data.script("captioned_images")
    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archives, annotations = {}, {}
    for part, ids in (("train2017", range(1, 21)), ("val2017", range(100, 104))):
        archives[f"{part}.zip"] = dabs_data.zip_file(
            mirror / f"{part}.zip",
            {f"{part}/{i:012d}.jpg": dabs_data.image_bytes(rng, (64, 48)) for i in ids},
        )
        annotations[f"annotations/instances_{part}.json"] = json.dumps(
            {
                "categories": [{"id": 1, "name": "person"}, {"id": 17, "name": "cat"}],
                "annotations": [
                    {"image_id": i, "category_id": (1, 17)[i % 2]} for i in ids if i != 5
                ],
            }
        ).encode()
        annotations[f"annotations/captions_{part}.json"] = json.dumps(
            {
                "annotations": [
                    {"image_id": i, "caption": f"a {('dog', 'cat')[i % 2]} on the mat"} for i in ids
                ]
            }
        ).encode()
    archives["annotations_trainval2017.zip"] = dabs_data.zip_file(
        mirror / "annotations_trainval2017.zip", annotations
    )
    root = _root(tmp_path)
    dabs_data.run_pinned(captioned, "mscoco", archives, root, mirror)

    sizes = {s: len(MSCOCO(root, s, backend="python")) for s in ("train", "valid", "test")}
    assert sizes == {"train": 18, "valid": 1, "test": 4}  # image 5 has no category: left out
    item = MSCOCO(root, "test", backend="python")[1]
    check_dabs_item(item, MSCOCO.spec())
    assert item[2][:7].tolist() == [2, 4, 5, 7, 8, 9, 3] and item[2].shape == (
        32,
    )  # a cat on the mat
    assert item[3] == 1 and MSCOCO.num_classes() == 80

    mismatched = MismatchedCaption(root, "train", backend="python")
    labels = [label for _, _, label in mismatched.items]
    assert set(labels) == {0, 1}
    original = {path: texts for path, texts, _ in MSCOCO(root, "train", backend="python").items}
    for path, texts, label in mismatched.items:
        assert (texts == original[path]) or label == 0
    assert DOMAINS["mismatched_caption"].loss == "binary_cross_entropy"
    batch = torch.utils.data.default_collate(
        [open_domain("mismatched_caption", "test", root)[i] for i in range(2)]
    )
    assert batch[1].shape == (2, 3, 224, 224) and batch[2].shape == (2, 32)


def test_vqa_answers_are_swapped_for_wrong_choices(tmp_path, dabs_data):
    captioned = dabs_data.script("captioned_images")
    rng = np.random.default_rng(1)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archives, caps = {}, {}
    for part in ("train", "val"):
        names = {i: f"COCO_{part}2014_{i:012d}.jpg" for i in range(1, 9)}
        archives[f"{part}2014.zip"] = dabs_data.zip_file(
            mirror / f"{part}2014.zip",
            {f"{part}2014/{n}": dabs_data.image_bytes(rng) for n in names.values()},
        )
        caps[f"annotations/captions_{part}2014.json"] = json.dumps(
            {"images": [{"id": i, "file_name": n} for i, n in names.items()]}
        ).encode()
        questions = [
            {
                "question_id": 10 * i,
                "image_id": i,
                "question": "what is it ?",
                "multiple_choices": ["cat", "dog", "mat"],
            }
            for i in names
        ]
        answers = [
            {
                "question_id": 10 * i,
                "image_id": i,
                "multiple_choice_answer": "cat" if i != 8 else "zebra",
            }
            for i in names
        ]
        big = part.capitalize()
        archives[f"Questions_{big}_mscoco.zip"] = dabs_data.zip_file(
            mirror / f"Questions_{big}_mscoco.zip",
            {
                f"MultipleChoice_mscoco_{part}2014_questions.json": json.dumps(
                    {"questions": questions}
                ).encode()
            },
        )
        archives[f"Annotations_{big}_mscoco.zip"] = dabs_data.zip_file(
            mirror / f"Annotations_{big}_mscoco.zip",
            {f"mscoco_{part}2014_annotations.json": json.dumps({"annotations": answers}).encode()},
        )
    archives["annotations_trainval2014.zip"] = dabs_data.zip_file(
        mirror / "annotations_trainval2014.zip", caps
    )
    root = _root(tmp_path)
    dabs_data.run_pinned(captioned, "vqa", archives, root, mirror)

    test = VQA(root, "test", backend="python")
    assert len(test) == 7  # "zebra" is not among the choices: dropped, as DABS
    for i in range(len(test)):
        index, image, ids, label = test[i]
        answer = ids[6].item()  # [CLS] what is it ? [SEP] <answer> [SEP]
        assert (answer == VOCAB.index("cat")) == (label == 1)
    assert {label for _, _, label in test.items} == {0, 1}
    check_dabs_item(test[0], VQA.spec())
    assert (
        len(VQA(root, "train", backend="python")) + len(VQA(root, "valid", backend="python")) == 7
    )


def test_a_missing_annotation_file_names_the_script(tmp_path):
    root = _root(tmp_path)
    with pytest.raises(FileNotFoundError, match="captioned_images.py"):
        MSCOCO(root, "train")
