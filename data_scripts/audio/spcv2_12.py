"""Speech Commands V2/12: 10 words + _unknown_ + _silence_ (the paper's SPCV2/12; 1.0 s clips).

    python data_scripts/audio/spcv2_12.py --archive speech_commands_v0.02.tar.gz \
        --test-archive speech_commands_test_set_v0.02.tar.gz --out data/audio/spcv2

Train/valid: the v0.02 archive with its lists; words other than the ten become ``_unknown_``;
``_silence_`` clips are one-second pieces of ``_background_noise_`` (``running_tap.wav`` kept for
validation), as TFDS's speech_commands builder. Test: the separate test-set archive, whose
folders are already the 12 classes. Writes OUT/metadata_v2_12.csv (the audio is shared with spcv2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile
from rq_audio.data.metadata import MetadataRow, write_metadata
from rq_core.archives import download, safe_extract

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spcv2 import extract_and_list  # noqa: E402

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
TEST_URL = "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz"
VALID_NOISE = "running_tap.wav"


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archive", type=Path, required=True)
    p.add_argument("--test-archive", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true")
    args = p.parse_args(argv)
    rows = [
        MetadataRow(r.file_name, r.label if r.label in WORDS else "_unknown_", r.split)
        for r in extract_and_list(args.archive, args.out, args.download)
        if r.split != "test"
    ]
    for noise in sorted((args.out / "_background_noise_").glob("*.wav")):
        wav, sr = soundfile.read(noise, dtype="float32")
        split = "valid" if noise.name == VALID_NOISE else "train"
        for k in range(len(wav) // sr):
            rel = f"_silence_/{noise.stem}_{k:03d}.wav"
            (args.out / rel).parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(args.out / rel, np.ascontiguousarray(wav[k * sr : (k + 1) * sr]), sr)
            rows.append(MetadataRow(rel, "_silence_", split))
    if args.download:
        download(TEST_URL, args.test_archive)
    test_dir = args.out / "test_v2_12"
    safe_extract(args.test_archive, test_dir)
    for f in sorted(test_dir.glob("*/*.wav")):
        rows.append(MetadataRow(f"test_v2_12/{f.parent.name}/{f.name}", f.parent.name, "test"))
    labels = {r.label for r in rows}
    if len(labels) != 12:
        print(f"warning: {len(labels)} classes found, expected 12: {sorted(labels)}")
    write_metadata(args.out / "metadata_v2_12.csv", rows)
    print(f"{len(rows)} clips, {len(labels)} classes -> {args.out / 'metadata_v2_12.csv'}")
    return args.out / "metadata_v2_12.csv"


if __name__ == "__main__":
    main(sys.argv[1:])
