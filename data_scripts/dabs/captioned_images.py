"""Images & text of DABS: MSCOCO 2017 (pretraining; mismatched-caption transfer) and VQA v1
(transfer, on COCO 2014 images). None of these archives publishes a checksum here: the first
download's SHA-256 is recorded and later runs verify against it. rq-dabs reads the extracted
folders as they are: domains ``mscoco`` (pretraining), ``mismatched_caption`` and ``vqa``
(transfer), each a 224 px image with 32 WordPiece ids of ROOT/text/vocab.txt (install one with
``python data_scripts/dabs/text.py --only --vocab PATH/vocab.txt``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dabs_script import PublicSet, run  # noqa: E402
from rq_dabs.data.download import Source  # noqa: E402

COCO = "http://images.cocodataset.org/"
VQA = "https://s3.amazonaws.com/cvmlp/vqa/mscoco/vqa/"

PUBLIC = {
    "mscoco": PublicSet(
        [
            Source(COCO + "zips/train2017.zip", "train2017.zip"),
            Source(COCO + "zips/val2017.zip", "val2017.zip"),
            Source(
                COCO + "annotations/annotations_trainval2017.zip", "annotations_trainval2017.zip"
            ),
        ],
        note="MSCOCO 2017 images + captions + instances",
    ),
    "vqa": PublicSet(
        [
            Source(COCO + "zips/train2014.zip", "train2014.zip"),
            Source(COCO + "zips/val2014.zip", "val2014.zip"),
            Source(
                COCO + "annotations/annotations_trainval2014.zip", "annotations_trainval2014.zip"
            ),
            Source(VQA + "Annotations_Train_mscoco.zip", "Annotations_Train_mscoco.zip"),
            Source(VQA + "Annotations_Val_mscoco.zip", "Annotations_Val_mscoco.zip"),
            Source(VQA + "Questions_Train_mscoco.zip", "Questions_Train_mscoco.zip"),
            Source(VQA + "Questions_Val_mscoco.zip", "Questions_Val_mscoco.zip"),
        ],
        note="VQA v1 (multiple choice) on COCO 2014",
    ),
}
REGISTRATION: dict[str, str] = {}


def main(argv=None, public=None):
    return run("captioned_images", public if public is not None else PUBLIC, REGISTRATION, argv)


if __name__ == "__main__":
    main()
