"""Chest x-rays: ChestX-ray8 from the medical_images script's tiny archive + labels CSV, and
CheXpert's CSV layout; multi-label vectors scored by AUROC in transfer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rq_dabs.data.base import check_dabs_item
from rq_dabs.data.catalog import DOMAINS, open_domain
from rq_dabs.data.xray import ChestXray8, CheXpert
from rq_dabs.evaluate import TransferSettings, dabs_linear_transfer

FINDINGS = ("No Finding", "Effusion|Mass", "Cardiomegaly", "Atelectasis|Pneumothorax|Hernia")


def test_xray8_archive_and_labels_feed_a_multilabel_reader(tmp_path, dabs_data):
    medical = dabs_data.script("medical_images")
    rng = np.random.default_rng(0)
    names = [f"{i:08d}_000.png" for i in range(30)]
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = dabs_data.tar_gz(
        mirror / "images_001.tar.gz",
        {f"images/{n}": dabs_data.image_bytes(rng, (64, 64), "PNG") for n in names},
    )
    table = tmp_path / "Data_Entry_2017.csv"
    rows = [
        f"{n},{FINDINGS[i % 4]},0,{i},58,M,PA,2682,2749,0.143,0.143"
        for i, n in enumerate(names[:-1])
    ]
    table.write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n" + "\n".join(rows) + "\n"
    )
    from rq_dabs.data.download import Source

    src = medical.PUBLIC["xray8"].sources[0]
    public = {
        "xray8": medical.PublicSet([Source(src.url, src.filename, md5=dabs_data.md5(archive))])
    }
    root = tmp_path / "root"
    medical.main(
        ["--root", str(root), "--mirror", str(mirror), "--metadata", str(table)], public=public
    )

    with pytest.warns(UserWarning, match="no row in"):  # the last image has no CSV row
        splits = {split: ChestXray8(root, split) for split in ("train", "valid", "test")}
    assert sum(len(d) + d.skipped for d in splits.values()) == 30
    assert sum(d.skipped for d in splits.values()) == 1  # the image without a CSV row
    item = splits["test"][0]
    check_dabs_item(item, ChestXray8.spec())
    assert item[2].shape == (8,) and item[2].dtype == torch.float32
    by_name = {name: label for name, label, _ in splits["train"].items}
    i = next(k for k, n in enumerate(names[:-1]) if f"images/{n}" in by_name and k % 4 == 3)
    assert by_name[f"images/{names[i]}"].tolist() == [
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
    ]  # Hernia is not one of the 8
    assert DOMAINS["xray8"].metric == "auroc" and open_domain("xray8", "valid", root).multilabel()


def test_bad_labels_table_is_rejected(tmp_path, dabs_data):
    medical = dabs_data.script("medical_images")
    bad = tmp_path / "labels.csv"
    bad.write_text("file,label\n")
    with pytest.raises(ValueError, match="Data_Entry_2017"):
        medical.install_metadata(bad, tmp_path)


def test_chexpert_selects_five_labels_and_maps_uncertain_to_negative(tmp_path, dabs_data):
    rng = np.random.default_rng(1)
    base = tmp_path / "medical_images" / "chexpert" / "CheXpert-v1.0-small"
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(
        [
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
        ]
    )
    for split, n in (("train", 4), ("valid", 2)):
        lines = [header]
        for i in range(n):
            path = f"CheXpert-v1.0-small/{split}/patient{i:05d}/study1/view1_frontal.jpg"
            (tmp_path / "medical_images" / "chexpert" / path).parent.mkdir(
                parents=True, exist_ok=True
            )
            (tmp_path / "medical_images" / "chexpert" / path).write_bytes(
                dabs_data.image_bytes(rng, (50, 40))
            )
            #             NoF  ECM  Card  LO  LL  Edema Cons Pn  Atel  Ptx  PE   PO  Fr  SD
            lines.append(f"{path},Male,60,Frontal,AP,,,1.0,,,-1.0,1.0,,0.0,,1.0,,,1.0")
        (base / f"{split}.csv").write_text("\n".join(lines) + "\n")
    train = CheXpert(tmp_path, "train")
    assert len(train) == 4 and len(CheXpert(tmp_path, "test")) == 2
    item = train[1]
    check_dabs_item(item, CheXpert.spec())
    # Atelectasis 0, Cardiomegaly 1, Consolidation 1, Edema -1 -> 0, Pleural Effusion 1
    assert item[2].tolist() == [0, 1, 1, 0, 1]


def test_auroc_transfer_on_multilabel_features():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 16, generator=gen)
    y = torch.stack([(x[:, k] > 0).float() for k in range(8)], 1)
    r = dabs_linear_transfer(
        (x[:200], y[:200]),
        (x[200:], y[200:]),
        num_outputs=8,
        loss="binary_cross_entropy",
        metric="auroc",
        settings=TransferSettings(epochs=30, lr=1e-2, seeds=(0,)),
    )
    assert r["metric"] == "auroc" and r["auroc_mean"] > 0.9
