"""A flat CSV logger: every logged row goes to ``RUN_DIR/metrics.csv`` (no version dirs)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

__all__ = ["MetricsCSVLogger"]


class MetricsCSVLogger(Logger):
    """Writes ``step`` + metric columns to ``RUN_DIR/metrics.csv`` from rank 0.

    Rows are appended as they are logged; when a new metric name appears the file is
    rewritten with the wider header. A resumed run appends to the same file, first
    dropping rows logged at or after the checkpoint's step (Lightning logs the metrics of
    optimizer step k with ``step = k - 1``), so the file reads as one run.
    """

    def __init__(self, run_dir: str | os.PathLike, resume_step: int | None = None) -> None:
        super().__init__()
        self.path = Path(run_dir) / "metrics.csv"
        self._columns: list[str] = ["step"]
        self._rows: list[dict[str, Any]] = []
        self._resume_step = resume_step
        self._started = False

    def _start(self) -> None:
        """Read the rows a resumed run keeps; only rank 0 (the one that logs) gets here."""
        self._started = True
        if self._resume_step is None or not self.path.is_file():
            return
        with self.path.open(newline="") as stream:
            reader = csv.DictReader(stream)
            self._columns = list(reader.fieldnames or ["step"])
            self._rows = [
                row
                for row in reader
                if row.get("step", "") != "" and int(float(row["step"])) < self._resume_step
            ]
        self._rewrite()

    @property
    def name(self) -> str:
        return "metrics"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        # The resolved config lives in RUN_DIR/config.yaml; nothing to add here.
        return None

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if not self._started:
            self._start()
        row = {"step": step if step is not None else ""}
        for key, value in metrics.items():
            row[key] = float(value.item() if hasattr(value, "item") else value)
        self._rows.append(row)
        new_columns = [key for key in row if key not in self._columns]
        if new_columns or not self.path.is_file():
            self._columns.extend(new_columns)
            self._rewrite()
        else:
            with self.path.open("a", newline="") as stream:
                csv.DictWriter(stream, fieldnames=self._columns).writerow(row)

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".csv.tmp")
        with temporary.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=self._columns)
            writer.writeheader()
            writer.writerows(self._rows)
        os.replace(temporary, self.path)
