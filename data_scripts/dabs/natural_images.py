"""Natural images of DABS: CIFAR-10 (prepared for rq-dabs's ``cifar10_small`` reader), DTD,
GTSRB (traffic signs), VGG Flowers, FGVC-Aircraft; ImageNet and CUB need registration.

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
from rq_dabs.download import Source  # noqa: E402

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


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
            rows.append((name, CIFAR10_CLASSES[int(label)], splits[i] if splits is not None else "test"))
    with open(out / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "label", "split"])
        writer.writerows(rows)


PUBLIC = {
    "cifar10": PublicSet(
        [Source("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                md5="c58f30108f718f92721af3b95e74349a")],
        prepare=prepare_cifar10,
        note="DABS pretraining set cifar10_small (32 px) and transfer set cifar10",
    ),
    "dtd": PublicSet(
        [Source("https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz", "dtd-r1.0.1.tar.gz",
                md5="fff73e5086ae6bdbea199a49dfb8a4c1")],
        note="transfer; splits in dtd/labels/train1.txt, val1.txt, test1.txt",
    ),
    "traffic_sign": PublicSet(
        [
            Source("https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB-Training_fixed.zip",
                   "GTSRB-Training_fixed.zip", md5="513f3c79a4c5141765e10e952eaa2478"),
            Source("https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB_Final_Test_Images.zip",
                   "GTSRB_Final_Test_Images.zip", md5="c7e4e6327067d32654124b0fe9e82185"),
            Source("https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB_Final_Test_GT.zip",
                   "GTSRB_Final_Test_GT.zip", md5="fe31e9c9270bbcd7b84b7f21a9d9d9e5"),
        ],
        note="transfer (GTSRB)",
    ),
    "vgg_flower": PublicSet(
        [
            Source("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz", "102flowers.tgz",
                   md5="52808999861908f626f3c1f4e79d11fa"),
            Source("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat", "imagelabels.mat",
                   md5="e0620be6f572b9609742df49c70aed4d"),
            Source("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat", "setid.mat",
                   md5="a5357ecc9cb78c4bef273ce3793fc85c"),
        ],
        note="transfer (Oxford Flowers-102)",
    ),
    "aircraft": PublicSet(
        [Source("https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                "fgvc-aircraft-2013b.tar.gz")],
        note="transfer (FGVC-Aircraft); no published checksum: the first download's SHA-256 is recorded",
    ),
}

REGISTRATION = {
    "imagenet": (
        "ImageNet (ILSVRC-2012, DABS's natural-image pretraining set at 224 px / patch 16): create an "
        "account at https://image-net.org/download.php, accept the terms, download "
        "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar plus the devkit, and extract them to "
        "ROOT/natural_images/imagenet/{train,val}/<wnid>/*.JPEG."
    ),
    "cu_birds": (
        "CUB-200-2011: request it at https://www.vision.caltech.edu/datasets/cub_200_2011/ (the "
        "download is behind a form), then extract CUB_200_2011.tgz to ROOT/natural_images/cu_birds/ "
        "so that ROOT/natural_images/cu_birds/CUB_200_2011/images.txt exists."
    ),
}


def main(argv=None, public=None):
    return run("natural_images", public if public is not None else PUBLIC, REGISTRATION, argv)


if __name__ == "__main__":
    main()
