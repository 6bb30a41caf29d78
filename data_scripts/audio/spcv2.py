"""Speech Commands V2, 35 words (EVAR task ``spcv2``, 1.0 s clips).

    python data_scripts/audio/spcv2.py --archive speech_commands_v0.02.tar.gz \
--out data/audio/spcv2 [--download]

Splits from the archive's ``validation_list.txt`` and ``testing_list.txt`` (everything else
trains), labels are the word folders; ``_background_noise_`` is left out, as EVAR's
make_metadata.py. No checksum is published for the archive.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rq_audio.data.metadata import MetadataRow, write_metadata
from rq_core.archives import download, safe_extract

URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"


def extract_and_list(archive: Path, out: Path, download_missing: bool = False) -> list[MetadataRow]:
    """Extract the v0.02 archive into ``out``; rows (word folder = label) with their split."""
    if download_missing:
        download(URL, archive)
    if not (out / "validation_list.txt").is_file():
        safe_extract(archive, out)
    valid = set((out / "validation_list.txt").read_text().split())
    test = set((out / "testing_list.txt").read_text().split())
    rows = []
    for f in sorted(out.glob("[a-z]*/*.wav")):
        rel = f"{f.parent.name}/{f.name}"
        split = "valid" if rel in valid else "test" if rel in test else "train"
        rows.append(MetadataRow(rel, f.parent.name, split))
    if not rows:
        raise SystemExit(
            f"no <word>/*.wav in {out}: is {archive} the Speech Commands v0.02 archive?"
        )
    return rows


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archive", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true")
    args = p.parse_args(argv)
    rows = extract_and_list(args.archive, args.out, args.download)
    write_metadata(args.out / "metadata.csv", rows)
    print(f"{len(rows)} clips, {len({r.label for r in rows})} words -> {args.out / 'metadata.csv'}")
    return args.out / "metadata.csv"


if __name__ == "__main__":
    main(sys.argv[1:])
