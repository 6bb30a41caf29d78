"""Reader for the ``.ts`` time-series format of the UEA/UCR archive (equal-length series).

A header of ``@key value`` lines, then ``@data`` and one series per line: the dimensions
separated by ``:``, values by ``,``, the class label last.
"""

from __future__ import annotations

import numpy as np

__all__ = ["parse_ts"]


def parse_ts(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse a ``.ts`` file's text into ``(X (N, T, C) float32, y (N,) int64, class names)``.

    Time-major as DABS's 1-D inputs. Raises ValueError naming the line on a malformed series.

    >>> X, y, names = parse_ts("@classLabel true a b\\n@data\\n1,2:3,4:a\\n5,6:7,8:b\\n")
    >>> X.shape, y.tolist(), names
    ((2, 2, 2), [0, 1], ['a', 'b'])
    """
    class_names: list[str] | None = None
    rows: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@classlabel"):
                parts = line.split()
                if len(parts) < 3 or parts[1].lower() != "true":
                    raise ValueError(f"line {number}: the series have no class labels ({line!r})")
                class_names = parts[2:]
            elif low == "@data":
                in_data = True
            continue
        *dims, label = line.split(":")
        try:
            series = np.array([[float(v) for v in d.split(",")] for d in dims], dtype=np.float32)
        except ValueError:
            raise ValueError(f"line {number}: a value is not a number") from None
        if rows and series.shape != rows[0].shape:
            raise ValueError(f"line {number}: shape {series.shape} differs from {rows[0].shape}")
        rows.append(series)
        labels.append(label.strip())
    if class_names is None:
        raise ValueError("no @classLabel header: not a labelled .ts file")
    if not rows:
        raise ValueError("no series after @data")
    unknown = sorted(set(labels) - set(class_names))
    if unknown:
        raise ValueError(f"labels {unknown} are not in @classLabel {class_names}")
    X = np.stack(rows).transpose(0, 2, 1).copy()  # (N, C, T) -> (N, T, C)
    y = np.array([class_names.index(v) for v in labels], dtype=np.int64)
    return X, y, class_names
