"""NSynth (instrument family, 11 classes; EVAR task ``nsynth``, 4.0 s clips).

    python data_scripts/audio/nsynth.py --archives DIR --out data/audio/nsynth [--download]

DIR holds ``nsynth-{train,valid,test}.jsonwav.tar.gz`` (https://magenta.tensorflow.org/datasets/nsynth);
each extracts to ``nsynth-<split>/{examples.json,audio/*.wav}``. Labels are
``instrument_family_str`` as EVAR's make_metadata.py. No checksums are published.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rq_audio.data.metadata import MetadataRow, write_metadata
from rq_core.archives import download, safe_extract

URL = "http://download.magenta.tensorflow.org/datasets/nsynth/nsynth-{split}.jsonwav.tar.gz"
SPLITS = ("train", "valid", "test")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archives", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true", help="fetch missing archives into --archives")
    args = p.parse_args(argv)
    rows = []
    for split in SPLITS:
        archive = args.archives / f"nsynth-{split}.jsonwav.tar.gz"
        if args.download:
            download(URL.format(split=split), archive)
        if not archive.is_file():
            raise SystemExit(f"missing {archive} (pass --download to fetch it)")
        safe_extract(archive, args.out)
        examples = json.loads((args.out / f"nsynth-{split}" / "examples.json").read_text())
        for note_id in sorted(examples):
            rows.append(
                MetadataRow(
                    f"nsynth-{split}/audio/{note_id}.wav",
                    examples[note_id]["instrument_family_str"],
                    split,
                )
            )
    write_metadata(args.out / "metadata.csv", rows)
    print(f"{len(rows)} notes -> {args.out / 'metadata.csv'}")
    return args.out / "metadata.csv"


if __name__ == "__main__":
    main(sys.argv[1:])
