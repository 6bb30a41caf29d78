"""The 224-px natural-image transfer sets: each data script's prepare step on a tiny archive in
the set's real layout, then the rq-dabs reader on what it wrote."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rq_dabs.data import image_folder as images
from rq_dabs.data.base import check_dabs_item
from rq_dabs.data.catalog import DOMAINS, open_domain


def _check(cls, root, sizes):
    got = {s: len(cls(root, s)) for s in ("train", "valid", "test")}
    assert got == sizes
    item = cls(root, "test")[0]
    check_dabs_item(item, cls.spec())
    assert 0.0 <= float(item[1].min()) and float(item[1].max()) <= 1.0
    assert 0 <= item[2] < cls.num_classes()


def test_dtd_uses_its_label_files(tmp_path, dabs_data):
    natural = dabs_data.script("natural_images")
    rng = np.random.default_rng(0)
    files, lists = {}, {"train1.txt": [], "val1.txt": [], "test1.txt": []}
    for c, category in enumerate(("banded", "zigzagged")):
        for i in range(4):
            name = f"{category}/{category}_{i:04d}.jpg"
            files[f"dtd/images/{name}"] = dabs_data.image_bytes(rng, (50 + c, 40))
            lists[("train1.txt", "train1.txt", "val1.txt", "test1.txt")[i]].append(name)
    for f, names in lists.items():
        files[f"dtd/labels/{f}"] = ("\n".join(names) + "\n").encode()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = dabs_data.tar_gz(mirror / "dtd-r1.0.1.tar.gz", files)
    root = tmp_path / "root"
    assert dabs_data.run_pinned(natural, "dtd", {archive.name: archive}, root, mirror) == ["dtd"]
    _check(images.DTD, root, {"train": 4, "valid": 2, "test": 2})
    _check(images.DTDSmall, root, {"train": 4, "valid": 2, "test": 2})
    assert images.DTD(root, "test")[1][2] == 1  # zigzagged: second in sorted order
    assert open_domain("dtd", "valid", root)[0][1].shape == (3, 224, 224)


def test_traffic_sign_splits_the_training_images_80_20_per_class(tmp_path, dabs_data):
    natural = dabs_data.script("natural_images")
    rng = np.random.default_rng(1)
    train = {
        f"GTSRB/Training/{c:05d}/{c:05d}_{i:05d}.ppm": dabs_data.image_bytes(rng, (31, 33), "PPM")
        for c in (0, 42)
        for i in range(10)
    }
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archives = {
        "GTSRB-Training_fixed.zip": dabs_data.zip_file(mirror / "GTSRB-Training_fixed.zip", train),
        "GTSRB_Final_Test_Images.zip": dabs_data.zip_file(
            mirror / "GTSRB_Final_Test_Images.zip", {"GTSRB/Final_Test/Images/00000.ppm": b"x"}
        ),
        "GTSRB_Final_Test_GT.zip": dabs_data.zip_file(
            mirror / "GTSRB_Final_Test_GT.zip", {"GT-final_test.csv": b"x"}
        ),
    }
    root = tmp_path / "root"
    dabs_data.run_pinned(natural, "traffic_sign", archives, root, mirror)
    # 10 per class: 8 of DABS's train part (7 train + 1 valid here) and 2 test.
    _check(images.TrafficSign, root, {"train": 14, "valid": 2, "test": 4})
    labels = {images.TrafficSign(root, "test")[i][2] for i in range(4)}
    assert labels == {0, 42}


def test_vgg_flower_reads_the_label_file_and_skips_a_broken_image(tmp_path, dabs_data):
    from scipy.io import savemat

    natural = dabs_data.script("natural_images")
    rng = np.random.default_rng(2)
    labels = np.array([[1] * 10 + [102] * 10])
    files = {f"jpg/image_{i + 1:05d}.jpg": dabs_data.image_bytes(rng) for i in range(20)}
    files["jpg/image_00001.jpg"] = b"not a jpeg"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    buf = io.BytesIO()
    savemat(buf, {"labels": labels})
    (mirror / "imagelabels.mat").write_bytes(buf.getvalue())
    (mirror / "setid.mat").write_bytes(buf.getvalue())
    archives = {
        "102flowers.tgz": dabs_data.tar_gz(mirror / "102flowers.tgz", files),
        "imagelabels.mat": mirror / "imagelabels.mat",
        "setid.mat": mirror / "setid.mat",
    }
    root = tmp_path / "root"
    dabs_data.run_pinned(natural, "vgg_flower", archives, root, mirror)
    _check(images.VGGFlower, root, {"train": 14, "valid": 2, "test": 4})
    train = images.VGGFlower(root, "train")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        items = [train[i] for i in range(len(train))]
    assert train.skipped == 1 and len(items) == 14
    assert {item[2] for item in items} == {0, 101}


def test_aircraft_crops_to_the_box(tmp_path, dabs_data):
    natural = dabs_data.script("natural_images")
    from PIL import Image

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    base = "fgvc-aircraft-2013b/data/"
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    image[10:30, 20:60] = 255  # the aircraft: white inside its box
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")  # lossless, so the crop is exact
    files = {}
    names = {"train": ["0001", "0002"], "val": ["0003"], "test": ["0004", "0005"]}
    for part, ids in names.items():
        files[base + f"images_variant_{part}.txt"] = "".join(
            f"{n} {'A330-200' if int(n) % 2 else 'Boeing 707'}\n" for n in ids
        ).encode()
    for n in sum(names.values(), []):
        files[base + f"images/{n}.jpg"] = buf.getvalue()
    files[base + "images_box.txt"] = "".join(
        f"{n} 20 10 60 30\n" for n in sum(names.values(), [])
    ).encode()
    archive = dabs_data.tar_gz(mirror / "fgvc-aircraft-2013b.tar.gz", files)
    root = tmp_path / "root"
    dabs_data.run_pinned(natural, "aircraft", {archive.name: archive}, root, mirror)
    _check(images.Aircraft, root, {"train": 2, "valid": 1, "test": 2})
    item = images.AircraftSmall(root, "test")[0]
    assert float(item[1].min()) > 0.99  # only the box is left
    assert [images.Aircraft(root, "test")[i][2] for i in range(2)] == [
        1,
        0,
    ]  # 0004 Boeing, 0005 A330


def test_natural_image_domains_are_in_the_catalog():
    for name in ("dtd", "traffic_sign", "vgg_flower", "aircraft"):
        assert DOMAINS[name].dataset_class.spec()[0].input_size == (224, 224)
        assert (
            DOMAINS[f"{name}_small"].dataset_class.spec()
            == DOMAINS["cifar10_small"].dataset_class.spec()
        )


def test_imagenet_reads_class_folders(tmp_path, dabs_data):
    rng = np.random.default_rng(3)
    folder = tmp_path / "natural_images" / "imagenet"
    for part, n in (("train", 3), ("val", 1)):
        for wnid in ("n01440764", "n01443537"):
            (folder / part / wnid).mkdir(parents=True)
            for i in range(n):
                (folder / part / wnid / f"{wnid}_{i}.JPEG").write_bytes(dabs_data.image_bytes(rng))
    assert len(images.ImageNet(tmp_path, "train")) == 6
    test = images.ImageNetSmall(tmp_path, "test")
    assert [test[i][2] for i in range(2)] == [0, 1]
    check_dabs_item(test[1], images.ImageNetSmall.spec())
