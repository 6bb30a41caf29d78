"""`rq-dabs pretrain` then `rq-dabs transfer` on every modality of the real DABS readers, each
on a handful of files in the layout data_scripts/dabs leaves (built here, tiny)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from rq_dabs_app.cli import main

SMALL = ["batch_size=4", "trainer.max_steps=2", "transfer.epochs=2"]


def _png(rng, size=(40, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def _image_folder(folder, rng, n_classes, per_class=4):
    folder.mkdir(parents=True)
    rows = []
    for c in range(n_classes):
        for i in range(per_class):
            name = f"img_{c}_{i}.png"
            (folder / name).write_bytes(_png(rng))
            rows.append((name, c, ("train", "train", "valid", "test")[i % 4]))
    with open(folder / "metadata.csv", "w", newline="") as f:
        csv.writer(f).writerows([("file_name", "label", "split"), *rows])


def _run(tiny, tmp_path, pretrain_domain, transfer_domain, extra=()):
    pre, out = tmp_path / f"pre_{pretrain_domain}", tmp_path / f"transfer_{transfer_domain}"
    main(
        [
            "pretrain",
            "--domain",
            pretrain_domain,
            "--algorithm",
            "rq",
            *tiny,
            *SMALL,
            *extra,
            f"run_dir={pre}",
        ]
    )
    main(
        [
            "transfer",
            f"domain={transfer_domain}",
            f"checkpoint={pre}",
            *tiny,
            *SMALL,
            *extra,
            f"run_dir={out}",
        ]
    )
    result = json.loads((out / "results.json").read_text())["results"][transfer_domain]["rq"]
    return result, pre


def test_natural_images_224_and_32_px(tmp_path, tiny, data_root):
    rng = np.random.default_rng(0)
    _image_folder(data_root / "natural_images" / "dtd", rng, 3)
    (data_root / "natural_images" / "cifar10").mkdir(parents=True)
    with open(data_root / "natural_images" / "cifar10" / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("file_name", "label", "split"))
        for i in range(8):
            (data_root / "natural_images" / "cifar10" / f"{i}.png").write_bytes(_png(rng, (32, 32)))
            writer.writerow((f"{i}.png", ("cat", "dog")[i % 2], "train"))
    result, _ = _run(tiny, tmp_path, "dtd", "dtd")
    assert result["metric"] == "accuracy" and 0 <= result["accuracy_mean"] <= 1
    result, pre = _run(tiny, tmp_path, "cifar10_small", "dtd_small")
    assert 0 <= result["accuracy_mean"] <= 1
    with pytest.raises(SystemExit, match="same input specs"):
        main(["transfer", "domain=dtd", f"checkpoint={pre}", *tiny, f"run_dir={tmp_path / 'bad'}"])


def test_text_wikitext_then_glue(tmp_path, tiny, data_root):
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "the",
        "cat",
        "dog",
        "sat",
        "good",
        "bad",
        "film",
        ".",
    ]
    (data_root / "text").mkdir(parents=True)
    (data_root / "text" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    wiki = data_root / "text" / "wikitext103" / "wikitext-103"
    wiki.mkdir(parents=True)
    (wiki / "wiki.train.tokens").write_text(
        "".join(f" the {'cat' if i % 2 else 'dog'} sat . \n\n" for i in range(12))
    )
    sst = data_root / "text" / "glue_sst2" / "SST-2"
    sst.mkdir(parents=True)
    rows = "sentence\tlabel\n" + "".join(
        f"the film {'good' if i % 2 else 'bad'} .\t{i % 2}\n" for i in range(24)
    )
    (sst / "train.tsv").write_text(rows)
    (sst / "dev.tsv").write_text(rows)
    sts = data_root / "text" / "glue_stsb" / "STS-B"
    sts.mkdir(parents=True)
    rows = (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        + "".join(
            f"{i}\tm\tf\t2012\t{i}\tn\tn\tthe cat\t"
            f"the {'cat' if i % 2 else 'dog'}\t{4.0 * (i % 2) + i / 24:.2f}\n"
            for i in range(24)
        )
    )
    (sts / "train.tsv").write_text(rows)
    (sts / "dev.tsv").write_text(rows)
    result, pre = _run(tiny, tmp_path, "wikitext103", "sst2")
    assert result["metric"] == "accuracy"
    out = tmp_path / "stsb"
    main(["transfer", "domain=stsb", f"checkpoint={pre}", *tiny, *SMALL, f"run_dir={out}"])
    result = json.loads((out / "results.json").read_text())["results"]["stsb"]["rq"]
    assert result["metric"] == "spearman" and -1 <= result["spearman_mean"] <= 1


def test_speech_audio_mnist(tmp_path, tiny, data_root):
    soundfile = pytest.importorskip("soundfile")
    rng = np.random.default_rng(1)
    base = data_root / "speech" / "audio_mnist" / "AudioMNIST-master" / "data"
    for speaker in (1, 2, 12, 26):
        (base / f"{speaker:02d}").mkdir(parents=True)
        for digit in (0, 5):
            wave = 0.2 * np.sin(
                2 * np.pi * (300 + 100 * digit) * np.arange(4800) / 48000
            ) + 0.01 * rng.normal(size=4800)
            soundfile.write(
                base / f"{speaker:02d}" / f"{digit}_{speaker:02d}_0.wav",
                wave.astype(np.float32),
                48000,
            )
    result, _ = _run(tiny, tmp_path, "audio_mnist", "audio_mnist")
    assert result["metric"] == "accuracy"


def test_chest_xray8_auroc(tmp_path, tiny, data_root):
    rng = np.random.default_rng(2)
    folder = data_root / "medical_images" / "xray8"
    (folder / "images").mkdir(parents=True)
    lines = ["Image Index,Finding Labels"]
    findings = [
        "Effusion|Mass",
        "No Finding",
        "Atelectasis|Cardiomegaly|Infiltration|Nodule|Pneumonia|Pneumothorax",
    ]
    for i in range(40):
        (folder / "images" / f"{i:08d}_000.png").write_bytes(_png(rng, (64, 64)))
        lines.append(f"{i:08d}_000.png,{findings[i % 3]}")
    (folder / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    result, _ = _run(tiny, tmp_path, "xray8", "xray8")
    assert result["metric"] == "auroc"


def test_image_and_caption_two_inputs(tmp_path, tiny, data_root):
    rng = np.random.default_rng(3)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "cat", "dog", "on", "the", "mat"]
    (data_root / "text").mkdir(parents=True)
    (data_root / "text" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    coco = data_root / "captioned_images" / "mscoco"
    (coco / "annotations").mkdir(parents=True)
    for part, ids in (("train2017", range(1, 13)), ("val2017", range(100, 108))):
        (coco / part).mkdir()
        for i in ids:
            (coco / part / f"{i:012d}.jpg").write_bytes(_png(rng, (64, 48)))
        (coco / "annotations" / f"instances_{part}.json").write_text(
            json.dumps(
                {
                    "categories": [{"id": 1}, {"id": 2}],
                    "annotations": [{"image_id": i, "category_id": 1 + i % 2} for i in ids],
                }
            )
        )
        (coco / "annotations" / f"captions_{part}.json").write_text(
            json.dumps(
                {
                    "annotations": [
                        {"image_id": i, "caption": f"a {('dog', 'cat')[i % 2]} on the mat"}
                        for i in ids
                    ]
                }
            )
        )
    result, _ = _run(tiny, tmp_path, "mscoco", "mismatched_caption")
    assert result["metric"] == "accuracy"
