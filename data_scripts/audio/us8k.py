"""UrbanSound8K (10 classes, 10 predefined folds; EVAR task ``us8k``, 4.0 s clips, \
leave-one-fold-out).

    python data_scripts/audio/us8k.py --archive UrbanSound8K.tar.gz --out data/audio/us8k \
[--download]

Verifies the Zenodo md5 (record 1203745), extracts, and writes ``file_name,label,fold`` from
``UrbanSound8K/metadata/UrbanSound8K.csv`` as EVAR's make_metadata.py.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from rq_audio.data.metadata import MetadataRow, write_metadata
from rq_core.archives import download, safe_extract, verify_checksum

URL = "https://zenodo.org/records/1203745/files/UrbanSound8K.tar.gz"
MD5 = "9aa69802bbf37fb986f71ec1483a196e"  # published on Zenodo


def main(argv: list[str] | None = None, *, expected_md5: str | None = MD5) -> Path:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archive", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true")
    args = p.parse_args(argv)
    if args.download:
        download(URL, args.archive, expected=expected_md5, algorithm="md5")
    verify_checksum(args.archive, expected_md5, "md5")
    safe_extract(args.archive, args.out)
    rows = []
    with open(args.out / "UrbanSound8K" / "metadata" / "UrbanSound8K.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append(
                MetadataRow(
                    f"UrbanSound8K/audio/fold{r['fold']}/{r['slice_file_name']}",
                    r["class"],
                    None,
                    int(r["fold"]),
                )
            )
    write_metadata(args.out / "metadata.csv", rows)
    print(f"{len(rows)} clips -> {args.out / 'metadata.csv'}")
    return args.out / "metadata.csv"


if __name__ == "__main__":
    main(sys.argv[1:])
