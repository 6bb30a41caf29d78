"""HDF5 shape caches: written once from any shape source, read lazily by index.

Layout (one file, all shapes concatenated; shape ``i`` owns rows ``offsets[i]:offsets[i+1]``):

``points`` (T, 3) float32, ``normals`` (T, 3) float32, ``labels`` (T,) int16 (per-point part
label, -1 where unknown), ``cluster_ids`` (T,) int16 (per-shape k-means ids, MID-Net's point
pseudo-labels), ``offsets`` (S+1,) int64, ``class_ids`` (S,) int32, ``splits`` (S,) uint8
(index into the ``split_names`` attribute), ``names`` (S,) str. Attributes: ``class_names``,
``part_names`` (JSON: one list per class, global part ids in order), ``num_clusters``.

A shape that cannot be read is skipped, named in the log (a warning of logger
``rq_points.data.shape_cache``) and counted in the :class:`CacheSummary` by its fixed reason
(:class:`~rq_points.data.readers.SkipReason`); ``name.skipped.csv`` beside ``name.h5`` lists every
skipped shape with its reason and message (:mod:`rq_core.skipped`). If more than
``max_failure_fraction`` of the shapes fail, the cache is not written (the list still is) and
:class:`ValueError` says how many failed and why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from rq_core.runs import atomic_output
from rq_core.skipped import write_skipped_csv
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from rq_points.data.kmeans import kmeans_cluster_ids
from rq_points.data.readers import Shape, ShapeReadError, SkipReason, check_shape

__all__ = ["CacheSummary", "ShapeCache", "ShapeSource", "write_shape_cache"]

SPLITS = ("train", "valid", "test")

log = logging.getLogger(__name__)


@dataclass
class ShapeSource:
    """One shape to put in a cache: ``load()`` returns the :class:`Shape` or raises."""

    name: str
    class_id: int
    split: str
    load: Callable[[], Shape]


@dataclass
class CacheSummary:
    """What :func:`write_shape_cache` did: shapes written, skipped counts by reason, the
    ``(name, reason)`` of every skipped shape and the path of the skip report."""

    path: str
    written: int
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    skipped_csv: Path | None = None
    num_classes: int = 0
    dropped_classes: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def __str__(self) -> str:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        where = f"; listed in {self.skipped_csv}" if self.num_skipped and self.skipped_csv else ""
        written = f"{self.path}: {self.written} shapes of {self.num_classes} classes written"
        dropped = (
            f"; {len(self.dropped_classes)} classes left out, no usable shape: "
            f"{self.dropped_classes[:10]}"
            if self.dropped_classes
            else ""
        )
        return f"{written}, {self.num_skipped} skipped ({why}{where}){dropped}"


def _load_checked(src: ShapeSource) -> Shape | tuple[SkipReason, str]:
    """The source's shape, or why it cannot be used: the reason fixed where the error was
    raised (:class:`ShapeReadError`); any other read failure is ``unreadable``."""
    try:
        return check_shape(src.load(), src.name)
    except ShapeReadError as err:
        return err.reason, str(err)
    except (OSError, ValueError) as err:
        return SkipReason.UNREADABLE, f"{type(err).__name__}: {err}"


def write_shape_cache(
    path: str | os.PathLike,
    sources: Sequence[ShapeSource],
    *,
    class_names: Sequence[str],
    part_names: Sequence[Sequence[str]] | None = None,
    num_clusters: int = 100,
    max_failure_fraction: float = 0.5,
    progress: bool = True,
) -> CacheSummary:
    """Read every source, compute k-means cluster ids, write the HDF5 cache atomically.

    >>> import tempfile, numpy as np
    >>> from rq_points.data.procedural import generate_shape
    >>> src = [ShapeSource(f"s{i}", 0, "train",
    ...        lambda i=i: generate_shape(0, 128, np.random.default_rng(i))) for i in range(2)]
    >>> d = tempfile.mkdtemp()
    >>> print(write_shape_cache(d + "/c.h5", src, class_names=["chair"], num_clusters=4,
    ...                         progress=False).written)
    2
    """
    path = Path(path)
    shapes: list[tuple[ShapeSource, Shape]] = []
    skipped: Counter[str] = Counter()
    failures: list[tuple[str, str, str]] = []  # (name, reason, detail)
    # Skip warnings go through the log; while the bar is shown they are printed above it.
    with logging_redirect_tqdm() if progress else contextlib.nullcontext():
        for src in tqdm(sources, desc=f"reading shapes for {path.name}", disable=not progress):
            if src.split not in SPLITS:
                raise ValueError(f"{src.name}: split must be one of {SPLITS}, got {src.split!r}")
            if not 0 <= src.class_id < len(class_names):
                raise ValueError(
                    f"{src.name}: class_id {src.class_id} outside [0, {len(class_names)})"
                )
            loaded = _load_checked(src)
            if isinstance(loaded, tuple):
                reason, detail = loaded
                log.warning("skipping %s (%s): %s", src.name, reason.value, detail)
                skipped[reason.value] += 1
                failures.append((src.name, reason.value, detail))
                continue
            shapes.append((src, loaded))
    total = len(sources)
    if total == 0:
        raise ValueError(f"{path}: no shapes to cache")
    report = write_skipped_csv(path, failures)
    if len(shapes) == 0 or (total - len(shapes)) / total > max_failure_fraction:
        raise ValueError(
            f"{path}: {total - len(shapes)} of {total} shapes could not be read "
            f"({dict(skipped)}); first failures: {[f[0] for f in failures[:5]]}; "
            f"all listed in {report}"
        )
    class_ids = np.array([s.class_id for s, _ in shapes], np.int32)
    used = np.unique(class_ids)
    dropped = [class_names[c] for c in range(len(class_names)) if c not in set(used.tolist())]
    if dropped and not part_names:
        # A class whose every file was skipped is not a class of this cache (the probes
        # would count it, and the summary would say "134 shapes, 139 classes"). Part-labelled
        # sets keep theirs: their global part ids are numbered over the full class list.
        class_ids = np.searchsorted(used, class_ids).astype(np.int32)
        class_names = [class_names[c] for c in used]
        log.warning("%s: classes left out, no usable shape (every file skipped): %s", path, dropped)
    else:
        dropped = []
    counts = np.array([s.points.shape[0] for _, s in shapes], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    with atomic_output(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        T = int(offsets[-1])
        d_points = f.create_dataset("points", (T, 3), np.float32)
        d_normals = f.create_dataset("normals", (T, 3), np.float32)
        d_labels = f.create_dataset("labels", (T,), np.int16)
        d_clusters = f.create_dataset("cluster_ids", (T,), np.int16)
        for i, (_, shape) in enumerate(tqdm(shapes, desc="k-means + write", disable=not progress)):
            a, b = offsets[i], offsets[i + 1]
            d_points[a:b] = shape.points
            d_normals[a:b] = shape.normals
            d_labels[a:b] = -1 if shape.labels is None else shape.labels
            d_clusters[a:b] = kmeans_cluster_ids(shape.points, num_clusters, seed=i)
        f["offsets"] = offsets
        f["class_ids"] = class_ids
        f["splits"] = np.array([SPLITS.index(s.split) for s, _ in shapes], np.uint8)
        f["names"] = np.array([s.name for s, _ in shapes], dtype=h5py.string_dtype())
        f.attrs["split_names"] = json.dumps(SPLITS)
        f.attrs["class_names"] = json.dumps(list(class_names))
        f.attrs["part_names"] = json.dumps([list(p) for p in part_names] if part_names else [])
        f.attrs["num_clusters"] = num_clusters
        f.attrs["skipped"] = json.dumps(dict(skipped))
        f.attrs["median_relative_extent"] = json.dumps(_median_relative_extent(shapes))
    if failures:
        log.warning(
            "%s: %d of %d shapes skipped (listed in %s)", path, len(failures), total, report
        )
    return CacheSummary(
        str(path),
        len(shapes),
        dict(skipped),
        [f[:2] for f in failures],
        report,
        len(class_names),
        dropped,
    )


def _median_relative_extent(shapes: Sequence[tuple[ShapeSource, Shape]]) -> list[float]:
    """Median over shapes of each axis's bounding-box extent / the shape's largest extent."""
    extents = np.array([s.points.max(0) - s.points.min(0) for _, s in shapes], np.float64)
    return np.median(extents / extents.max(1, keepdims=True), axis=0).round(4).tolist()


class ShapeCache:
    """Lazy reader of a cache written by :func:`write_shape_cache`.

    The HDF5 handle opens on first access in each process (safe with DataLoader workers).
    ``cache[i]`` returns a dict of numpy arrays: ``points``, ``normals``, ``labels``,
    ``cluster_ids`` and the ints ``class_id`` and ``index`` (= i).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        if not Path(self.path).is_file():
            raise FileNotFoundError(
                f"shape cache {self.path} does not exist (run `rq-mid-net prepare`)"
            )
        with h5py.File(self.path, "r") as f:
            missing = {"points", "normals", "labels", "cluster_ids", "offsets", "class_ids"} - set(
                f
            )
            if missing:
                raise ValueError(f"{self.path} is not a shape cache: missing {sorted(missing)}")
            self.offsets = f["offsets"][()]
            self.class_ids = f["class_ids"][()]
            self.splits = f["splits"][()]
            self.names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["names"][()]]
            self.split_names = tuple(json.loads(f.attrs["split_names"]))
            self.class_names = list(json.loads(f.attrs["class_names"]))
            self.part_names = [list(p) for p in json.loads(f.attrs["part_names"])]
            self.num_clusters = int(f.attrs["num_clusters"])
            extent = f.attrs.get("median_relative_extent")
            # Caches written before it was recorded (or by other writers) have none.
            self.median_relative_extent = json.loads(extent) if extent is not None else None
        self._file: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.class_ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def part_offsets(self) -> list[int]:
        """First global part id of every class (ShapeNet Part convention)."""
        return [int(x) for x in np.cumsum([0] + [len(p) for p in self.part_names])[:-1]]

    @property
    def num_parts(self) -> int:
        return sum(len(p) for p in self.part_names)

    def split_indices(self, split: str) -> np.ndarray:
        """Indices of the shapes of one split (train/valid/test)."""
        if split not in self.split_names:
            raise ValueError(f"unknown split {split!r}; the cache has {self.split_names}")
        return np.flatnonzero(self.splits == self.split_names.index(split))

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"shape {i} outside [0, {len(self)}) in {self.path}")
        f = self._handle()
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return {
            "points": f["points"][a:b],
            "normals": f["normals"][a:b],
            "labels": f["labels"][a:b].astype(np.int64),
            "cluster_ids": f["cluster_ids"][a:b].astype(np.int64),
            "class_id": int(self.class_ids[i]),
            "index": i,
        }

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, -1
        return state
