"""Every data_scripts/audio script on a tiny archive the test builds (no network)."""

import csv
import importlib.util
import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from rq_audio.data.metadata import read_metadata
from rq_core.archives import ChecksumError, UnsafeArchiveError, file_digest, safe_extract

SCRIPTS = Path(__file__).resolve().parents[3] / "data_scripts" / "audio"


def load(name):
    spec = importlib.util.spec_from_file_location(f"audio_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def wav_bytes(seconds=0.2, sr=16000, value=0.1):
    buf = io.BytesIO()
    soundfile.write(buf, np.full(int(seconds * sr), value, np.float32), sr, format="WAV")
    return buf.getvalue()


def make_tar(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def rows_of(path):
    return [(r.file_name, r.label, r.split, r.fold) for r in read_metadata(path)]


# --- safe extraction -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../up.txt", "/abs.txt", "a/../../up.txt"])
def test_path_escapes_are_refused_before_writing(tmp_path, name):
    tar = make_tar(tmp_path / "evil.tar.gz", {"ok.txt": b"fine", name: b"evil"})
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        safe_extract(tar, tmp_path / "out")
    assert not (tmp_path / "out" / "ok.txt").exists() and not (tmp_path / "up.txt").exists()
    z = make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", name: b"evil"})
    with pytest.raises(UnsafeArchiveError):
        safe_extract(z, tmp_path / "outz")


def test_links_out_of_the_target_are_refused(tmp_path):
    with tarfile.open(tmp_path / "link.tar", "w") as tar:
        info = tarfile.TarInfo("innocent")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(tmp_path / "link.tar", tmp_path / "out")


# --- one test per dataset script ---------------------------------------------------------------


def test_audioset_local_clips_filtered_by_segments(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    for ytid in ("AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC"):
        (src / f"{ytid}_30000.wav").write_bytes(wav_bytes())
    segments = tmp_path / "seg.csv"
    segments.write_text(
        '# header\n# YTID, start, end, labels\nAAAAAAAAAAA, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n'
        'CCCCCCCCCCC, 0.000, 10.000, "/m/04rlf"\n'
    )
    meta = load("audioset").main(
        ["--source", str(src), "--out", str(tmp_path / "out"), "--segments", str(segments)]
    )
    rows = rows_of(meta)
    assert [r[0] for r in rows] == ["clips/AAAAAAAAAAA_30000.wav", "clips/CCCCCCCCCCC_30000.wav"]
    assert rows[0][1] == "/m/09x0r,/m/05zppz" and rows[0][2] == "train"
    assert (tmp_path / "out" / rows[0][0]).is_file()
    tar = make_tar(tmp_path / "as.tar.gz", {"x/DDDDDDDDDDD.flac": wav_bytes()})
    meta = load("audioset").main(["--source", str(tar), "--out", str(tmp_path / "out2")])
    assert rows_of(meta) == [("clips/x/DDDDDDDDDDD.flac", "", "train", None)]


def test_nsynth(tmp_path):
    archives = tmp_path / "a"
    archives.mkdir()
    for split, fam in (("train", "guitar"), ("valid", "brass"), ("test", "organ")):
        note = f"{fam}_acoustic_000-060-100"
        make_tar(
            archives / f"nsynth-{split}.jsonwav.tar.gz",
            {
                f"nsynth-{split}/examples.json": json.dumps(
                    {note: {"instrument_family_str": fam}}
                ).encode(),
                f"nsynth-{split}/audio/{note}.wav": wav_bytes(),
            },
        )
    rows = rows_of(
        load("nsynth").main(["--archives", str(archives), "--out", str(tmp_path / "out")])
    )
    assert rows == [
        ("nsynth-train/audio/guitar_acoustic_000-060-100.wav", "guitar", "train", None),
        ("nsynth-valid/audio/brass_acoustic_000-060-100.wav", "brass", "valid", None),
        ("nsynth-test/audio/organ_acoustic_000-060-100.wav", "organ", "test", None),
    ]
    assert all((tmp_path / "out" / r[0]).is_file() for r in rows)


def _us8k_archive(tmp_path):
    table = (
        "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
        "1-a.wav,1,0,1,1,1,3,dog_bark\n2-b.wav,2,0,1,1,2,2,children_playing\n"
    )
    return make_tar(
        tmp_path / "UrbanSound8K.tar.gz",
        {
            "UrbanSound8K/metadata/UrbanSound8K.csv": table.encode(),
            "UrbanSound8K/audio/fold1/1-a.wav": wav_bytes(),
            "UrbanSound8K/audio/fold2/2-b.wav": wav_bytes(),
        },
    )


def test_us8k_folds_and_checksum(tmp_path):
    archive = _us8k_archive(tmp_path)
    us8k = load("us8k")
    with pytest.raises(ChecksumError, match="published"):
        us8k.main(["--archive", str(archive), "--out", str(tmp_path / "bad")])  # the real md5
    meta = us8k.main(
        ["--archive", str(archive), "--out", str(tmp_path / "out")],
        expected_md5=file_digest(archive, "md5"),
    )
    assert rows_of(meta) == [
        ("UrbanSound8K/audio/fold1/1-a.wav", "dog_bark", None, 1),
        ("UrbanSound8K/audio/fold2/2-b.wav", "children_playing", None, 2),
    ]
    assert next(csv.reader(open(meta)))[2] == "fold"


def test_vc1_joins_parts_and_uses_iden_split(tmp_path):
    archives = tmp_path / "a"
    archives.mkdir()
    dev = make_zip(
        tmp_path / "dev.zip",
        {"wav/id10001/vid1/00001.wav": wav_bytes(), "wav/id10002/vid2/00001.wav": wav_bytes()},
    )
    data = dev.read_bytes()
    (archives / "vox1_dev_wav_partaa").write_bytes(data[: len(data) // 2])
    (archives / "vox1_dev_wav_partab").write_bytes(data[len(data) // 2 :])
    make_zip(archives / "vox1_test_wav.zip", {"wav/id10003/vid3/00001.wav": wav_bytes()})
    split = tmp_path / "iden_split.txt"
    split.write_text(
        "1 id10001/vid1/00001.wav\n2 id10002/vid2/00001.wav\n3 id10003/vid3/00001.wav\n"
    )
    vc1 = load("vc1")
    with pytest.raises(ChecksumError):
        vc1.main(
            [
                "--archives",
                str(archives),
                "--iden-split",
                str(split),
                "--out",
                str(tmp_path / "bad"),
            ]
        )
    sums = {n: file_digest(archives / n, "md5") for n in ("vox1_dev_wav.zip", "vox1_test_wav.zip")}
    meta = vc1.main(
        ["--archives", str(archives), "--iden-split", str(split), "--out", str(tmp_path / "out")],
        checksums=sums,
    )
    assert rows_of(meta) == [
        ("wav/id10001/vid1/00001.wav", "id10001", "train", None),
        ("wav/id10002/vid2/00001.wav", "id10002", "valid", None),
        ("wav/id10003/vid3/00001.wav", "id10003", "test", None),
    ]


def test_voxforge_sessions_stay_in_one_split(tmp_path):
    archives = tmp_path / "a"
    for lang in ("de", "fr"):
        (archives / lang).mkdir(parents=True)
        for s in range(5):
            make_tar(
                archives / lang / f"user{s}-20080101-abc.tgz",
                {f"user{s}-20080101-abc/wav/a{k}.wav": wav_bytes() for k in range(2)}
                | {f"user{s}-20080101-abc/etc/README": b"text"},
            )
    rows = rows_of(
        load("voxforge").main(["--archives", str(archives), "--out", str(tmp_path / "out")])
    )
    assert len(rows) == 20 and {r[1] for r in rows} == {"de", "fr"}
    by_session = {}
    for name, _, split, _ in rows:
        by_session.setdefault(name.rsplit("/wav/", 1)[0], set()).add(split)
    assert all(len(s) == 1 for s in by_session.values())
    assert {r[2] for r in rows} == {"train", "valid", "test"}


def _spc_archive(tmp_path):
    files = {
        f"{w}/spk{k}_nohash_0.wav": wav_bytes()
        for w in ("yes", "no", "marvin", "bed")
        for k in range(3)
    }
    files["_background_noise_/white_noise.wav"] = wav_bytes(seconds=2.5)
    files["_background_noise_/running_tap.wav"] = wav_bytes(seconds=1.2)
    files["validation_list.txt"] = b"yes/spk1_nohash_0.wav\nmarvin/spk1_nohash_0.wav\n"
    files["testing_list.txt"] = b"yes/spk2_nohash_0.wav\nbed/spk2_nohash_0.wav\n"
    files["LICENSE"] = b"cc-by"
    return make_tar(tmp_path / "speech_commands_v0.02.tar.gz", files)


def test_spcv2_35_word_metadata(tmp_path):
    meta = load("spcv2").main(
        ["--archive", str(_spc_archive(tmp_path)), "--out", str(tmp_path / "out")]
    )
    rows = rows_of(meta)
    assert len(rows) == 12 and {r[1] for r in rows} == {"yes", "no", "marvin", "bed"}
    split = {r[0]: r[2] for r in rows}
    assert split["yes/spk1_nohash_0.wav"] == "valid" and split["bed/spk2_nohash_0.wav"] == "test"
    assert split["no/spk0_nohash_0.wav"] == "train"
    assert not any(r[0].startswith("_background") for r in rows)


def test_spcv2_12_unknown_silence_and_test_set(tmp_path):
    test_archive = make_tar(
        tmp_path / "test_set.tar.gz",
        {f"{c}/t{k}.wav": wav_bytes() for c in ("yes", "_unknown_", "_silence_") for k in range(2)},
    )
    meta = load("spcv2_12").main(
        [
            "--archive",
            str(_spc_archive(tmp_path)),
            "--test-archive",
            str(test_archive),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    rows = rows_of(meta)
    labels = {r[0]: r[1] for r in rows}
    assert (
        labels["marvin/spk0_nohash_0.wav"] == "_unknown_"
        and labels["yes/spk0_nohash_0.wav"] == "yes"
    )
    silence = [r for r in rows if r[1] == "_silence_" and r[2] != "test"]
    assert len(silence) == 3  # 2 one-second pieces of white noise + 1 of running_tap
    assert {r[2] for r in silence} == {"train", "valid"}
    assert sorted(r[0] for r in rows if r[2] == "test")[0].startswith("test_v2_12/")
    assert {r[1] for r in rows if r[2] == "test"} == {"yes", "_unknown_", "_silence_"}
    info = soundfile.info(tmp_path / "out" / silence[0][0])
    assert info.frames == info.samplerate  # one-second clips
