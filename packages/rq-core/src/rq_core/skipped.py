"""The ``<cache>.skipped.csv`` report that every modality's cache writer leaves beside its cache.

A dataset file that cannot be used is skipped, named in the log and counted; this file keeps
the full list so that nothing is lost when the log scrolls away. One row per skipped file:

``file``   the file's name as the dataset lists it (relative to the data folder)
``reason`` a fixed code for the kind of failure (each modality's reader defines its codes)
``detail`` the reader's message, for a person

The file is written for every cache, with only the header when nothing was skipped, so a
report of an earlier run never sits beside a newer cache.

>>> import tempfile, pathlib
>>> cache = pathlib.Path(tempfile.mkdtemp()) / "train.h5"
>>> p = write_skipped_csv(cache, [("a.wav", "empty", "empty audio file: a.wav")])
>>> p.name, read_skipped_csv(cache)
('train.skipped.csv', [('a.wav', 'empty', 'empty audio file: a.wav')])
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SKIPPED_COLUMNS", "read_skipped_csv", "skipped_csv_path", "write_skipped_csv"]

SKIPPED_COLUMNS = ("file", "reason", "detail")


def skipped_csv_path(cache: str | os.PathLike) -> Path:
    """``dir/name.h5`` -> ``dir/name.skipped.csv``."""
    cache = Path(cache)
    return cache.with_name(cache.stem + ".skipped.csv")


def write_skipped_csv(cache: str | os.PathLike, rows: Iterable[tuple[str, str, str]]) -> Path:
    """Write ``(file, reason, detail)`` rows beside ``cache`` (atomically); returns the path."""
    path = skipped_csv_path(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(SKIPPED_COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def read_skipped_csv(cache: str | os.PathLike) -> list[tuple[str, str, str]]:
    """The rows of the report beside ``cache`` (the header left out)."""
    with open(skipped_csv_path(cache), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return [tuple(r) for r in rows[1:]]  # type: ignore[misc]
