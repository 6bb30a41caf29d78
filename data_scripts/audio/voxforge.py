"""VoxForge language identification (6 languages; EVAR task ``voxforge``, 5.8 s clips).

    python data_scripts/audio/voxforge.py --archives DIR --out data/audio/voxforge
    python data_scripts/audio/voxforge.py --url-list voxforge_urls.txt --download --archives DIR \
--out ...

DIR holds ``<lang>/*.tgz`` speaker-session archives (``--download`` fetches them from TFDS's
url list, https://storage.googleapis.com/tfds-data/downloads/voxforge/voxforge_urls.txt, whose
paths carry the language). Each session goes wholly to one split, 70/15/15 % with a fixed seed,
as EVAR made its split (utils/make_metadata.py). No checksums are published.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rq_audio.data.audio_io import AUDIO_EXTENSIONS
from rq_audio.data.metadata import MetadataRow, write_metadata
from rq_core.archives import download, safe_extract


def _language_of(url: str) -> str:
    parts = url.split("/")
    return parts[parts.index("downloads") + 1] if "downloads" in parts else "unknown"


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archives", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--url-list", type=Path, default=None)
    p.add_argument("--download", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.download:
        if args.url_list is None:
            raise SystemExit("--download needs --url-list")
        for url in args.url_list.read_text().split():
            url = url if "://" in url else "http://" + url
            download(url, args.archives / _language_of(url) / url.rsplit("/", 1)[-1])
    sessions = sorted(args.archives.glob("*/*.tgz"))
    if not sessions:
        raise SystemExit(f"no <lang>/*.tgz archives under {args.archives}")
    order = np.random.default_rng(args.seed).permutation(len(sessions))
    n_train, n_valid = int(0.7 * len(sessions)), int(0.15 * len(sessions))
    split_of = {}
    for rank, i in enumerate(order):
        split_of[sessions[i]] = (
            "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
        )
    rows = []
    for archive in sessions:
        lang = archive.parent.name
        target = args.out / lang / archive.stem
        for f in sorted(safe_extract(archive, target)):
            if f.suffix.lower() in AUDIO_EXTENSIONS:
                rows.append(
                    MetadataRow(
                        f.relative_to(args.out.resolve()).as_posix(), lang, split_of[archive]
                    )
                )
    write_metadata(args.out / "metadata.csv", rows)
    print(f"{len(rows)} utterances from {len(sessions)} sessions -> {args.out / 'metadata.csv'}")
    return args.out / "metadata.csv"


if __name__ == "__main__":
    main(sys.argv[1:])
