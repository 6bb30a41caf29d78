"""Sensors of DABS: PAMAP2 (pretraining and transfer), read by rq-dabs's ``pamap2`` domain.

The UCI archive publishes no checksum: the first download's SHA-256 is recorded next to it
and later runs verify against that. Run with --help.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dabs_script import PublicSet, run  # noqa: E402
from rq_dabs.data.download import Source  # noqa: E402


def check_pamap2(set_dir: Path) -> None:
    """The reader needs PAMAP2_Dataset/Protocol/subject101.dat ... subject109.dat."""
    protocol = set_dir / "PAMAP2_Dataset" / "Protocol"
    found = sorted(p.name for p in protocol.glob("subject10*.dat"))
    if not found:
        raise FileNotFoundError(
            f"no subject10*.dat under {protocol}: the archive's layout changed?"
        )
    print(f"[sensor] pamap2: {len(found)} subject files in {protocol}")


PUBLIC = {
    "pamap2": PublicSet(
        [
            Source(
                "https://archive.ics.uci.edu/ml/machine-learning-databases/00231/PAMAP2_Dataset.zip",
                "PAMAP2_Dataset.zip",
            )
        ],
        prepare=check_pamap2,
        note="PAMAP2 (UCI 231): 9 subjects, 3 IMUs + heart rate at 100 Hz",
    ),
}
REGISTRATION: dict[str, str] = {}


def main(argv=None, public=None):
    return run("sensor", public if public is not None else PUBLIC, REGISTRATION, argv)


if __name__ == "__main__":
    main()
