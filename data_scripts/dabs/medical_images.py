"""Chest x-rays of DABS: ChestX-ray8 (NIH, transfer; 12 image archives) is public; CheXpert
(pretraining) needs registration. The NIH archives publish no checksum here: the first
download's SHA-256 is recorded and later runs verify against it.

The labels are a separate file, ``Data_Entry_2017.csv``, that the NIH page serves only through
its web viewer: download it by hand from https://nihcc.app.box.com/v/ChestXray-NIHCC and pass
``--metadata PATH/Data_Entry_2017.csv``; it is copied beside the images, where rq-dabs's
``xray8`` reader (224 px, patch 16, 3 channels; 8 pathologies, multi-label, AUROC) looks.
CheXpert, once extracted as below, is read by the ``chexpert`` reader.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dabs_script import PublicSet, run  # noqa: E402
from rq_dabs.data.download import Source  # noqa: E402

# The 12 archives of images_001 ... images_012 (DABS src/datasets/medical_images/xray8.py).
NIH_IDS = (
    "vfk49d74nhbxq3nqjg0900w5nvkorp5c",
    "i28rlmbvmfjbl8p2n3ril0pptcmcu9d1",
    "f1t00wrtdk94satdfb9olcolqx20z2jp",
    "0aowwzs5lhjrceb3qp67ahp0rd1l1etg",
    "v5e3goj22zr6h8tzualxfsqlqaygfbsn",
    "asi7ikud9jwnkrnkj99jnpfkjdes7l6l",
    "jn1b4mw4n6lnh74ovmcjb8y48h8xj07n",
    "tvpxmn7qyrgl0w8wfh9kqfjskv6nmm1j",
    "upyy3ml7qdumlgk2rfcvlb9k6gvqq2pj",
    "l6nilvfa9cg3s28tqv1qc1olm3gnz54p",
    "hhq8fkdgvcari67vfhs7ppg2w6ni4jze",
    "ioqwiy20ihqwyr8pf4c24eazhh281pbu",
)

PUBLIC = {
    "xray8": PublicSet(
        [
            Source(f"https://nihcc.box.com/shared/static/{key}.gz", f"images_{i + 1:03d}.tar.gz")
            for i, key in enumerate(NIH_IDS)
        ],
        note="ChestX-ray8 images; also download Data_Entry_2017.csv from "
        "https://nihcc.app.box.com/v/ChestXray-NIHCC "
        "and pass --metadata PATH",
    ),
}
REGISTRATION = {
    "chexpert": (
        "CheXpert (DABS's x-ray pretraining set): register at "
        "https://stanfordmlgroup.github.io/competitions/chexpert/ to receive the download link of "
        "CheXpert-v1.0-small, and extract it to ROOT/medical_images/chexpert/ so that "
        "ROOT/medical_images/chexpert/CheXpert-v1.0-small/train.csv exists."
    ),
}


def install_metadata(table: Path, root: Path) -> Path:
    """Copy ``Data_Entry_2017.csv`` to ROOT/medical_images/xray8/ after checking its columns."""
    with open(table, newline="") as f:
        columns = next(csv.reader(f), [])
    if "Image Index" not in columns or "Finding Labels" not in columns:
        raise ValueError(
            f"{table} lacks 'Image Index' / 'Finding Labels': not ChestX-ray8's Data_Entry_2017.csv"
        )
    target = root / "medical_images" / "xray8" / "Data_Entry_2017.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(table, target)
    print(f"[medical_images] labels -> {target}")
    return target


def main(argv=None, public=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    table = None
    if "--metadata" in argv:
        i = argv.index("--metadata")
        table = Path(argv[i + 1])
        del argv[i : i + 2]
    done = run("medical_images", public if public is not None else PUBLIC, REGISTRATION, argv)
    if table is not None:
        from dabs_script import default_root

        root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else default_root()
        install_metadata(table, root)
    return done


if __name__ == "__main__":
    main()
