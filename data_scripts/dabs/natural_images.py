"""Natural images of DABS: CIFAR-10 (prepared for rq-dabs's ``cifar10_small`` reader), DTD,
GTSRB (traffic signs), VGG Flowers, FGVC-Aircraft; ImageNet and CUB need registration.

Each public set is prepared into ``ROOT/natural_images/<set>/metadata.csv``
(``file_name,label,split[,box]``, file names relative to that folder, labels as class indices
in DABS's order) with DABS's train/test splits (``src/datasets/natural_images/*.py``); our
``valid`` is the official validation list where one exists (DTD val1, Aircraft val), else a
seeded tenth of DABS's train part. The rq-dabs readers are ``dtd``, ``traffic_sign``,
``vgg_flower``, ``aircraft`` (224 px) and their ``*_small`` variants (32 px).

Checksums are the ones torchvision verifies (the same files). Run with --help.
"""

from __future__ import annotations

import csv
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dabs_script import PublicSet, run  # noqa: E402
from rq_dabs.data.download import Source  # noqa: E402

CIFAR10_CLASSES = (
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


def prepare_cifar10(set_dir: Path, valid_fraction: float = 0.1, seed: int = 0) -> None:
    """cifar-10-batches-py pickles -> PNGs + metadata.csv: train, valid (``valid_fraction`` of
    each class of the train batches, seeded), test (the test batch)."""
    from PIL import Image

    batches = set_dir / "cifar-10-batches-py"
    out = set_dir  # ROOT/natural_images/cifar10: the folder of rq_dabs's CIFAR10Small reader
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    train_x, train_y = [], []
    for i in range(1, 6):
        with open(batches / f"data_batch_{i}", "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        train_x.append(batch[b"data"])
        train_y.extend(batch[b"labels"])
    with open(batches / "test_batch", "rb") as f:
        test = pickle.load(f, encoding="bytes")
    train_x = np.concatenate(train_x)
    train_y = np.array(train_y)
    rng = np.random.default_rng(seed)
    split = np.array(["train"] * len(train_y), dtype=object)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(train_y == c))
        split[idx[: round(len(idx) * valid_fraction)]] = "valid"
    sets = [(train_x, train_y, split), (test[b"data"], np.array(test[b"labels"]), None)]
    for set_index, (data, labels, splits) in enumerate(sets):
        for i, (row, label) in enumerate(zip(data, labels)):
            name = f"images/{'train' if set_index == 0 else 'test'}_{i:05d}.png"
            Image.fromarray(row.reshape(3, 32, 32).transpose(1, 2, 0)).save(out / name)
            rows.append(
                (name, CIFAR10_CLASSES[int(label)], splits[i] if splits is not None else "test")
            )
    with open(out / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "label", "split"])
        writer.writerows(rows)


def _write_metadata(out: Path, rows: list[tuple], box: bool = False) -> None:
    with open(out / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "label", "split", *(["box"] if box else [])])
        writer.writerows(rows)
    counts = {s: sum(r[2] == s for r in rows) for s in ("train", "valid", "test")}
    print(f"[natural_images] {out.name}: {counts} -> {out / 'metadata.csv'}")


def _split_80_20(
    paths: list[str], rs: np.random.RandomState
) -> tuple[list[str], list[str], list[str]]:
    """DABS's per-class split (``traffic_sign.py``, ``vgg_flower.py``): shuffle with the shared
    RandomState(42), first ``int(0.8 n)`` train, rest test. Our valid: the last tenth of train."""
    paths = np.array(sorted(paths))
    order = np.arange(len(paths))
    rs.shuffle(order)
    paths = paths[order].tolist()
    cut = int(0.8 * len(paths))
    train, test = paths[:cut], paths[cut:]
    n_valid = max(1, len(train) // 10) if len(train) > 1 else 0
    return train[: len(train) - n_valid], train[len(train) - n_valid :], test


def prepare_dtd(set_dir: Path) -> None:
    """dtd/labels/{train1,val1,test1}.txt -> metadata.csv; classes: sorted folder names."""
    labels = set_dir / "dtd" / "labels"
    splits = {"train": "train1.txt", "valid": "val1.txt", "test": "test1.txt"}
    lines = {
        s: [x.strip() for x in (labels / f).read_text().splitlines() if x.strip()]
        for s, f in splits.items()
    }
    classes = sorted({x.split("/")[0] for rows in lines.values() for x in rows})
    rows = [
        (f"dtd/images/{x}", classes.index(x.split("/")[0]), s)
        for s, xs in lines.items()
        for x in xs
    ]
    _write_metadata(set_dir, rows)


def prepare_traffic_sign(set_dir: Path) -> None:
    """GTSRB training images (one folder per class, 00000..00042) -> metadata.csv, 80/20 per
    class as DABS (its test split comes from the training images too)."""
    class_dirs = sorted(
        d
        for pattern in ("GTSRB/Training/[0-9]*", "GTSRB/Final_Training/Images/[0-9]*")
        for d in set_dir.glob(pattern)
        if d.is_dir()
    )
    if not class_dirs:
        raise FileNotFoundError(f"no GTSRB class folders under {set_dir}/GTSRB")
    rs = np.random.RandomState(42)
    rows = []
    for d in class_dirs:
        names = [p.relative_to(set_dir).as_posix() for p in d.glob("*.ppm")]
        for split, part in zip(("train", "valid", "test"), _split_80_20(names, rs)):
            rows += [(name, int(d.name), split) for name in part]
    _write_metadata(set_dir, rows)


def prepare_vgg_flower(set_dir: Path) -> None:
    """jpg/image_NNNNN.jpg + imagelabels.mat (labels 1..102) -> metadata.csv, 80/20 per class."""
    from scipy.io import loadmat

    mat = set_dir / "archives" / "imagelabels.mat"
    labels = loadmat(mat)["labels"][0]
    by_label: dict[int, list[str]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(int(label), []).append(f"jpg/image_{i + 1:05d}.jpg")
    rs = np.random.RandomState(42)
    rows = []
    for label, names in by_label.items():  # first-seen order, as DABS's defaultdict
        for split, part in zip(("train", "valid", "test"), _split_80_20(names, rs)):
            rows += [(name, label - 1, split) for name in part]
    _write_metadata(set_dir, rows)


def prepare_aircraft(set_dir: Path) -> None:
    """fgvc-aircraft-2013b/data/images_variant_{train,val,test}.txt + images_box.txt ->
    metadata.csv with the box; classes: sorted variant names (DABS ``aircraft.py``)."""
    data = set_dir / "fgvc-aircraft-2013b" / "data"
    boxes = {}
    for line in (data / "images_box.txt").read_text().splitlines():
        if line.strip():
            name, *coords = line.split()
            boxes[name] = " ".join(coords)
    splits = {"train": "train", "valid": "val", "test": "test"}
    pairs = {}
    for split, part in splits.items():
        pairs[split] = [
            line.strip().split(" ", 1)
            for line in (data / f"images_variant_{part}.txt").read_text().splitlines()
            if line.strip()
        ]
    variants = sorted({v for rows in pairs.values() for _, v in rows})
    rows = [
        (f"fgvc-aircraft-2013b/data/images/{name}.jpg", variants.index(v), split, boxes[name])
        for split, items in pairs.items()
        for name, v in sorted(items)
    ]
    _write_metadata(set_dir, rows, box=True)


PUBLIC = {
    "cifar10": PublicSet(
        [
            Source(
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "cifar-10-python.tar.gz",
                md5="c58f30108f718f92721af3b95e74349a",
            )
        ],
        prepare=prepare_cifar10,
        note="DABS pretraining set cifar10_small (32 px) and transfer set cifar10",
    ),
    "dtd": PublicSet(
        [
            Source(
                "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                "dtd-r1.0.1.tar.gz",
                md5="fff73e5086ae6bdbea199a49dfb8a4c1",
            )
        ],
        prepare=prepare_dtd,
        note="transfer (readers dtd, dtd_small); splits dtd/labels/train1.txt, val1.txt, test1.txt",
    ),
    "traffic_sign": PublicSet(
        [
            Source(
                "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB-Training_fixed.zip",
                "GTSRB-Training_fixed.zip",
                md5="513f3c79a4c5141765e10e952eaa2478",
            ),
            Source(
                "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB_Final_Test_Images.zip",
                "GTSRB_Final_Test_Images.zip",
                md5="c7e4e6327067d32654124b0fe9e82185",
            ),
            Source(
                "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB_Final_Test_GT.zip",
                "GTSRB_Final_Test_GT.zip",
                md5="fe31e9c9270bbcd7b84b7f21a9d9d9e5",
            ),
        ],
        prepare=prepare_traffic_sign,
        note="transfer (GTSRB; readers traffic_sign, traffic_sign_small)",
    ),
    "vgg_flower": PublicSet(
        [
            Source(
                "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",
                "102flowers.tgz",
                md5="52808999861908f626f3c1f4e79d11fa",
            ),
            Source(
                "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat",
                "imagelabels.mat",
                md5="e0620be6f572b9609742df49c70aed4d",
            ),
            Source(
                "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat",
                "setid.mat",
                md5="a5357ecc9cb78c4bef273ce3793fc85c",
            ),
        ],
        prepare=prepare_vgg_flower,
        note="transfer (Oxford Flowers-102; readers vgg_flower, vgg_flower_small)",
    ),
    "aircraft": PublicSet(
        [
            Source(
                "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                "fgvc-aircraft-2013b.tar.gz",
            )
        ],
        prepare=prepare_aircraft,
        note="transfer (FGVC-Aircraft; readers aircraft, aircraft_small); no published "
        "checksum: the first download's SHA-256 is recorded",
    ),
}

REGISTRATION = {
    "imagenet": (
        "ImageNet (ILSVRC-2012, DABS's natural-image pretraining set at 224 px / patch 16): "
        "create an "
        "account at https://image-net.org/download.php, accept the terms, download "
        "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar plus the devkit, and extract them to "
        "ROOT/natural_images/imagenet/{train,val}/<wnid>/*.JPEG."
    ),
    "cu_birds": (
        "CUB-200-2011: request it at https://www.vision.caltech.edu/datasets/cub_200_2011/ (the "
        "download is behind a form), then extract CUB_200_2011.tgz to "
        "ROOT/natural_images/cu_birds/ "
        "so that ROOT/natural_images/cu_birds/CUB_200_2011/images.txt exists."
    ),
}


def main(argv=None, public=None):
    return run("natural_images", public if public is not None else PUBLIC, REGISTRATION, argv)


if __name__ == "__main__":
    main()
