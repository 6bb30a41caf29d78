"""AudioSet for pretraining, from your own local copy of the clips (YouTube clips cannot be
downloaded from a script reliably; see https://research.google.com/audioset/download.html).

    python data_scripts/audio/audioset.py --source /data/audioset_clips --out data/audio/audioset \
        [--segments unbalanced_train_segments.csv]

``--source`` is a folder (or a .tar/.zip of one) of clips named ``<YTID>...``; with
``--segments`` only clips whose YouTube id is listed are kept and labelled with the csv's
``positive_labels``. Clips are linked (or copied, ``--copy``) into OUT and listed in
OUT/metadata.csv (split ``train``; pretraining reads only the files).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from pathlib import Path

from rq_audio.data.audio_io import AUDIO_EXTENSIONS
from rq_audio.data.metadata import MetadataRow, write_metadata
from rq_core.archives import safe_extract


def read_segments(path: Path) -> dict[str, str]:
    """YTID -> positive_labels from an AudioSet segments csv (``#`` comment lines skipped)."""
    labels = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.reader(line for line in f if not line.startswith("#")):
            if len(row) >= 4:
                labels[row[0].strip()] = ",".join(x.strip().strip('"') for x in row[3:]).strip('"')
    return labels


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--source", type=Path, required=True, help="folder, .tar(.gz) or .zip of clips")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--segments", type=Path, default=None, help="AudioSet segments csv to filter/label by"
    )
    p.add_argument("--copy", action="store_true", help="copy the clips instead of symlinking them")
    args = p.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    source = args.source
    if source.is_file():
        safe_extract(source, out / "clips")
        source, link = out / "clips", False
    else:
        link = True
    segments = read_segments(args.segments) if args.segments else None
    rows = []
    for f in sorted(source.rglob("*")):
        if not f.is_file() or f.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        ytid = f.stem[:11]
        if segments is not None and ytid not in segments:
            continue
        rel = f.relative_to(source)
        if link:
            dest = out / "clips" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                shutil.copy2(f, dest) if args.copy else os.symlink(f.resolve(), dest)
        rows.append(
            MetadataRow(f"clips/{rel.as_posix()}", segments[ytid] if segments else "", "train")
        )
    if not rows:
        raise SystemExit(
            f"no audio clips found under {args.source}"
            + (" matching --segments" if segments else "")
        )
    write_metadata(out / "metadata.csv", rows)
    print(f"{len(rows)} clips -> {out / 'metadata.csv'}")
    return out / "metadata.csv"


if __name__ == "__main__":
    main(sys.argv[1:])
