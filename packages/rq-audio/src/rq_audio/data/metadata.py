"""The EVAR metadata.csv: ``file_name,label,split`` (split in train/valid/test) or
``file_name,label,fold`` (integer folds, leave-one-fold-out).

>>> import io
>>> rows = read_metadata(io.StringIO("file_name,label,split\\na.wav,dog,train\\n"))
>>> rows[0].label, rows[0].split
('dog', 'train')
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SPLITS", "MetadataRow", "read_metadata", "write_metadata"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class MetadataRow:
    file_name: str
    label: str
    split: str | None = None
    fold: int | None = None


def read_metadata(source: str | Path | io.TextIOBase) -> list[MetadataRow]:
    """Read and validate an EVAR metadata.csv (path or text stream).

    Raises ValueError naming the problem: missing columns, unknown split, bad fold, no rows.
    Extra columns (EVAR files sometimes keep an index column) are ignored.
    """
    if isinstance(source, (str, Path)):
        with open(source, newline="", encoding="utf-8") as f:
            return read_metadata(f)
    reader = csv.DictReader(source)
    fields = set(reader.fieldnames or [])
    if not {"file_name", "label"} <= fields:
        raise ValueError(f"metadata.csv needs columns file_name,label; found {sorted(fields)}")
    has_split, has_fold = "split" in fields, "fold" in fields
    if not (has_split or has_fold):
        raise ValueError("metadata.csv needs a 'split' (train/valid/test) or a 'fold' column")
    rows = []
    for line, r in enumerate(reader, start=2):
        split = fold = None
        if has_split and r["split"] not in ("", None):
            split = r["split"].strip()
            if split not in SPLITS:
                raise ValueError(f"metadata.csv line {line}: split {split!r} not in {SPLITS}")
        if has_fold and r["fold"] not in ("", None):
            try:
                fold = int(r["fold"])
            except ValueError:
                raise ValueError(
                    f"metadata.csv line {line}: fold {r['fold']!r} is not an integer"
                ) from None
        if split is None and fold is None:
            raise ValueError(f"metadata.csv line {line}: neither split nor fold given")
        rows.append(MetadataRow(r["file_name"].strip(), str(r["label"]).strip(), split, fold))
    if not rows:
        raise ValueError("metadata.csv has no rows")
    return rows


def write_metadata(path: str | Path, rows: list[MetadataRow]) -> None:
    """Write rows as ``file_name,label,split`` or ``file_name,label,fold``
    (whichever they carry)."""
    by_fold = rows and rows[0].split is None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "label", "fold" if by_fold else "split"])
        for r in rows:
            w.writerow([r.file_name, r.label, r.fold if by_fold else r.split])
