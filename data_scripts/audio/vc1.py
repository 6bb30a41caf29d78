"""VoxCeleb1 speaker identification (1,251 speakers; EVAR task ``vc1``, 8.2 s clips).

    python data_scripts/audio/vc1.py --archives DIR --iden-split iden_split.txt --out data/audio/vc1

DIR holds ``vox1_dev_wav.zip`` (or its pieces ``vox1_dev_wav_partaa``... which are joined) and
``vox1_test_wav.zip`` from https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html (registration
needed, so no --download). Their md5s published by the VGG group are verified. Splits come from
``iden_split.txt`` (1 train, 2 valid, 3 test), labels are the speaker ids, as EVAR.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rq_audio.data.metadata import MetadataRow, write_metadata
from rq_core.archives import safe_extract, verify_checksum

MD5 = {  # published with the archives
    "vox1_dev_wav.zip": "ae63e55b951748cc486645f532ba230b",
    "vox1_test_wav.zip": "185fdc63c3c739954633d50379a3d102",
}
SPLIT_CODES = {"1": "train", "2": "valid", "3": "test"}


def main(argv: list[str] | None = None, *, checksums: dict[str, str] | None = None) -> Path:
    checksums = MD5 if checksums is None else checksums
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archives", type=Path, required=True)
    p.add_argument("--iden-split", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    dev = args.archives / "vox1_dev_wav.zip"
    parts = sorted(args.archives.glob("vox1_dev_wav_parta*"))
    if not dev.is_file() and parts:
        with open(dev, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
    for name in ("vox1_dev_wav.zip", "vox1_test_wav.zip"):
        archive = args.archives / name
        if not archive.is_file():
            raise SystemExit(f"missing {archive}")
        verify_checksum(archive, checksums.get(name), "md5")
        safe_extract(archive, args.out)
    rows = []
    for line in args.iden_split.read_text().split("\n"):
        if line.strip():
            code, rel = line.split()
            rows.append(MetadataRow(f"wav/{rel}", rel.split("/")[0], SPLIT_CODES[code]))
    missing = [r.file_name for r in rows if not (args.out / r.file_name).is_file()]
    if missing:
        print(
            f"warning: {len(missing)} files listed in {args.iden_split.name} are not in the "
            f"archives (first: {missing[0]})"
        )
    write_metadata(args.out / "metadata.csv", rows)
    print(f"{len(rows)} utterances -> {args.out / 'metadata.csv'}")
    return args.out / "metadata.csv"


if __name__ == "__main__":
    main(sys.argv[1:])
