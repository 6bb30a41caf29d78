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
    "ShapeSetConfig",
    "prepare_shape_set",
    "shape_set_cache_path",
    "split_indices",
]

SOURCES = ("procedural", "folder", "sweethome3d", "cache")


@dataclass
class ShapeSetConfig:
    """One shape set, turned into an HDF5 cache under the cache directory on first use.

    ``source``: ``procedural`` (embedded family), ``folder`` (``root`` holds metadata.csv),
    ``sweethome3d`` (``root`` is sweethome3d.jar) or ``cache`` (``root`` is a prepared .h5,
    e.g. from ``data_scripts/points``). ``splits``: the splits a command uses (pretraining
    reads these; the probes read train/valid/test).
    """

    source: str = "procedural"
    root: str = ""
    num_points: int = 2048
    shapes_per_class: int = 60
    num_clusters: int = 100  # MID-Net's seg_num: 100
    seed: int = 0
    splits: list[str] = field(default_factory=lambda: ["train"])


def shape_set_cache_path(shapes: ShapeSetConfig, cache_dir: str | os.PathLike) -> Path:
    """Where the cache of ``shapes`` lives: ``cache_dir/SOURCE-HASH.h5``, the hash over every
    field that changes its content (not ``splits``: one cache holds all splits)."""
    if shapes.source == "cache":
        return Path(shapes.root).expanduser()
    spec = {k: getattr(shapes, k) for k in ("source", "num_points", "shapes_per_class",
                                            "num_clusters", "seed")}
    spec["root"] = str(Path(shapes.root).expanduser().resolve()) if shapes.root else ""
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{shapes.source}-{digest}.h5"


def _sources(shapes: ShapeSetConfig):
    if shapes.source == "procedural":
        return procedural_sources(shapes.shapes_per_class, shapes.num_points, shapes.seed)
    if shapes.source == "folder":
        return folder_sources(shapes.root, shapes.num_points, shapes.seed)
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
        summary = write_shape_cache(path, sources, class_names=meta["class_names"],
                                    part_names=meta["part_names"],
                                    num_clusters=shapes.num_clusters, progress=progress)
        if progress:
            print(f"[prepare] {summary} in {time.time() - started:.1f} s")
        return summary

    if shapes.source not in SOURCES:
        raise ValueError(f"data.source must be one of {'|'.join(SOURCES)}, got {shapes.source!r}")
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
