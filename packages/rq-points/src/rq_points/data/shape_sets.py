"""A shape set as a config names it, and its HDF5 cache: where it lives (a name derived from
everything that shapes it), built once (rank 0 under DDP), read by every command.

>>> import tempfile
>>> shapes = ShapeSetConfig(num_points=64, shapes_per_class=1, num_clusters=4)
>>> cache = prepare_shape_set(shapes, tempfile.mkdtemp(), progress=False)
>>> len(cache), cache.num_classes
(6, 6)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rq_core.runs import rank_zero_first

from rq_points.data.shape_cache import ShapeCache, write_shape_cache
from rq_points.data.sources import folder_sources, procedural_sources, sweethome3d_sources

__all__ = [
    "SOURCES",
    "Z_UP_RATIO",
    "ShapeSetConfig",
    "prepare_shape_set",
    "shape_set_cache_path",
    "split_indices",
    "up_axis_warning",
]

SOURCES = ("procedural", "folder", "sweethome3d", "cache")


@dataclass
class ShapeSetConfig:
    """One shape set, turned into an HDF5 cache under the cache directory on first use.

    ``source``: ``procedural`` (embedded family), ``folder`` (``root`` holds the shape files,
    ``metadata`` the CSV with ``file_name`` relative to ``root``; default ROOT/metadata.csv),
    ``sweethome3d`` (``root`` is sweethome3d.jar) or ``cache`` (``root`` is a prepared .h5,
    e.g. from ``data_scripts/points``). ``splits``: the splits a command uses (pretraining
    reads these; the probes read train/valid/test).
    """

    source: str = "procedural"
    root: str = ""
    metadata: str = ""  # folder: the metadata CSV; "" = ROOT/metadata.csv (file_name rel. ROOT)
    num_points: int = 2048
    shapes_per_class: int = 60
    num_clusters: int = 100  # MID-Net's seg_num: 100
    seed: int = 0
    splits: list[str] = field(default_factory=lambda: ["train"])


# The fields that change what a cache of each source holds: two shape sets that agree on these
# share one cache (e.g. `data` and `classify_data` pointing at one folder: read once).
_CONTENT_FIELDS = {
    "procedural": ("shapes_per_class", "num_points", "num_clusters", "seed"),
    "folder": ("root", "metadata", "num_points", "num_clusters", "seed"),
    "sweethome3d": ("root", "num_points", "num_clusters", "seed"),
}


def shape_set_cache_path(shapes: ShapeSetConfig, cache_dir: str | os.PathLike) -> Path:
    """Where the cache of ``shapes`` lives: ``cache_dir/SOURCE-HASH.h5``, the hash over the
    fields that change its content for that source (not ``splits``: one cache holds all)."""
    if shapes.source == "cache":
        return Path(shapes.root).expanduser()
    if shapes.source not in _CONTENT_FIELDS:
        raise ValueError(f"data.source must be one of {'|'.join(SOURCES)}, got {shapes.source!r}")
    spec: dict = {"source": shapes.source}
    for key in _CONTENT_FIELDS[shapes.source]:
        value = getattr(shapes, key)
        if key in ("root", "metadata") and value:
            value = str(Path(value).expanduser().resolve())
        spec[key] = value
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{shapes.source}-{digest}.h5"


def _sources(shapes: ShapeSetConfig):
    if shapes.source == "procedural":
        return procedural_sources(shapes.shapes_per_class, shapes.num_points, shapes.seed)
    if shapes.source == "folder":
        return folder_sources(shapes.root, shapes.num_points, shapes.seed, shapes.metadata)
    if shapes.source == "sweethome3d":
        return sweethome3d_sources(shapes.root, shapes.num_points, shapes.seed)
    raise ValueError(f"data.source must be one of {'|'.join(SOURCES)}, got {shapes.source!r}")


def prepare_shape_set(
    shapes: ShapeSetConfig, cache_dir: str | os.PathLike, *, progress: bool = True
) -> ShapeCache:
    """Build the cache of ``shapes`` unless it exists (under DDP rank 0 builds it, the other
    ranks wait: :func:`rq_core.runs.rank_zero_first`); return its reader."""
    path = shape_set_cache_path(shapes, cache_dir)
    if shapes.source == "cache":
        if not path.is_file():
            raise FileNotFoundError(
                f"data.source=cache but {path} does not exist (see data_scripts/points)"
            )
        return ShapeCache(path)

    def build():
        sources, meta = _sources(shapes)
        started = time.time()
        summary = write_shape_cache(
            path,
            sources,
            class_names=meta["class_names"],
            part_names=meta["part_names"],
            num_clusters=shapes.num_clusters,
            progress=progress,
        )
        if progress:
            print(f"[prepare] {summary} in {time.time() - started:.1f} s")
        return summary

    rank_zero_first(path, build)
    return ShapeCache(path)


def split_indices(cache: ShapeCache, splits: list[str]) -> np.ndarray:
    """Sorted indices of the shapes of ``splits``.

    >>> import tempfile
    >>> c = prepare_shape_set(ShapeSetConfig(num_points=64, shapes_per_class=2, num_clusters=4),
    ...                       tempfile.mkdtemp(), progress=False)
    >>> len(split_indices(c, ["train"])) + len(split_indices(c, ["valid", "test"])) == len(c)
    True
    """
    return np.sort(np.concatenate([cache.split_indices(s) for s in splits]))


# A set looks z-up when its shapes are typically this much taller along z than along y
# (median over shapes of extent / largest extent). A heuristic: upright objects are usually
# taller than they are deep; the embedded y-up family has y 1.0 and z 0.66.
Z_UP_RATIO = 1.25


def up_axis_warning(cache: ShapeCache, up_axis: int) -> str | None:
    """A warning when the pretraining rotation turns about y (``up_axis=1``) but the shapes of
    ``cache`` look z-up (ModelNet's convention), else ``None``.

    >>> class Cache:  # a stand-in: only the recorded extents matter
    ...     path, median_relative_extent = "modelnet.h5", [0.9, 0.6, 1.0]
    >>> print(up_axis_warning(Cache(), up_axis=1))  # doctest: +ELLIPSIS
    modelnet.h5: the shapes look z-up (median extent y 0.60, z 1.00) but ...up_axis=2
    >>> up_axis_warning(Cache(), up_axis=2) is None
    True
    """
    extent = getattr(cache, "median_relative_extent", None)
    if up_axis != 1 or not extent:
        return None
    y, z = extent[1], extent[2]
    if z < Z_UP_RATIO * y:
        return None
    return (
        f"{cache.path}: the shapes look z-up (median extent y {y:.2f}, z {z:.2f}) but the "
        "pretraining rotation turns about y (augmentation.up_axis=1, ShapeNet's y-up); if "
        "they are z-up (ModelNet's convention), set augmentation.up_axis=2"
    )
