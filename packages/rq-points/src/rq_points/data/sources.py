"""Where shapes come from: lists of :class:`~rq_points.data.shape_cache.ShapeSource` for a cache.

- :func:`procedural_sources`: the embedded part-labelled family (:mod:`rq_points.data.procedural`).
- :func:`folder_sources`: a folder of shape files + a metadata CSV with
  ``file_name,label,split`` (the project's points data contract; ``file_name`` relative to
  the folder, the CSV inside it or anywhere else); labels are class names.
- :func:`sweethome3d_sources`: the furniture OBJ models inside Sweet Home 3D's jar (Debian
  package ``sweethome3d``), classed by catalogue category; OBJ groups become per-model part
  labels (local to each model, so useful for pretraining and classification).
"""

from __future__ import annotations

import csv
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from rq_points.data import procedural
from rq_points.data.readers import ShapeReadError, SkipReason, load_shape, parse_obj, sample_mesh
from rq_points.data.shape_cache import SPLITS, ShapeSource

__all__ = ["folder_sources", "procedural_sources", "sweethome3d_sources", "split_of"]

log = logging.getLogger(__name__)


def split_of(index: int, fractions: tuple[float, float] = (0.6, 0.2)) -> str:
    """Deterministic train/valid/test assignment by position (fractions of train, valid)."""
    u = (index * 0.6180339887498949) % 1.0  # golden-ratio sequence: well spread, no RNG
    return "train" if u < fractions[0] else "valid" if u < fractions[0] + fractions[1] else "test"


def procedural_sources(
    num_per_class: int, num_points: int, seed: int = 0
) -> tuple[list[ShapeSource], dict]:
    """Sources for the procedural family and the cache metadata (class and part names)."""
    sources = []
    for c, name in enumerate(procedural.CLASSES):
        for i in range(num_per_class):

            def load(c=c, i=i):
                return procedural.generate_shape(c, num_points, np.random.default_rng([seed, c, i]))

            sources.append(ShapeSource(f"{name}_{i:04d}", c, split_of(i), load))
    meta = {
        "class_names": list(procedural.CLASSES),
        "part_names": [list(p) for p in procedural.PARTS],
    }
    return sources, meta


def folder_sources(
    root: str | os.PathLike,
    num_points: int,
    seed: int = 0,
    metadata: str | os.PathLike | None = None,
) -> tuple[list[ShapeSource], dict]:
    """Sources from a metadata CSV (``file_name,label,split``; default ``root/metadata.csv``)
    whose ``file_name`` is relative to ``root``: ``metadata`` may lie elsewhere (e.g. beside a
    ``shapes/`` folder, as the audio data contract has it). Files listed but absent are
    skipped as ``missing``; a warning says where they were looked for."""
    root = Path(root).expanduser()
    meta_path = Path(metadata).expanduser() if metadata else root / "metadata.csv"
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path} not found: a shape folder needs a metadata CSV with "
            "file_name,label,split (data.metadata=PATH when it is not ROOT/metadata.csv)"
        )
    with open(meta_path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"file_name", "label", "split"}
    if not rows or not need <= set(rows[0]):
        found = sorted(rows[0]) if rows else "no rows"
        raise ValueError(f"{meta_path}: needs columns {sorted(need)}, has {found}")
    classes = sorted({r["label"] for r in rows})
    sources = []
    missing = []
    for i, r in enumerate(rows):
        if r["split"] not in SPLITS:
            raise ValueError(
                f"{meta_path} row {i + 2}: split must be one of {SPLITS}, got {r['split']!r}"
            )
        path = root / r["file_name"]
        if not path.is_file():
            missing.append(r["file_name"])
        sources.append(
            ShapeSource(
                r["file_name"],
                classes.index(r["label"]),
                r["split"],
                lambda p=path, i=i: load_shape(p, num_points, np.random.default_rng([seed, i])),
            )
        )
    if missing:
        log.warning(
            "%d of %d files listed in %s are not under %s (file_name is relative to data.root); "
            "first: %s",
            len(missing),
            len(rows),
            meta_path,
            root,
            missing[:3],
        )
    return sources, {"class_names": classes, "part_names": None}


def sweethome3d_sources(
    jar: str | os.PathLike, num_points: int, seed: int = 0
) -> tuple[list[ShapeSource], dict]:
    """Sources from Sweet Home 3D's jar (``usr/share/sweethome3d/sweethome3d.jar`` of the .deb)."""
    jar = Path(jar)
    if not jar.is_file():
        raise FileNotFoundError(
            f"{jar} not found: "
            "`apt-get download sweethome3d && dpkg-deb -x sweethome3d_*.deb DIR`, "
            "then pass DIR/usr/share/sweethome3d/sweethome3d.jar"
        )
    with zipfile.ZipFile(jar) as z:
        props = z.read("com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties").decode(
            "latin-1"
        )
    entries: dict[str, dict[str, str]] = {}
    for line in props.splitlines():
        key, sep, value = line.partition("=")
        field, hash_, num = key.partition("#")
        if sep and hash_ and field in ("name", "category", "model"):
            entries.setdefault(num.strip(), {})[field] = value.strip()
    models = [e for e in entries.values() if e.get("model", "").lower().endswith(".obj")]
    classes = sorted({e.get("category", "unknown") for e in models})

    def load(member: str, i: int):
        with zipfile.ZipFile(jar) as z:
            text = z.read(member).decode("latin-1")
        mesh = parse_obj(text, f"{jar}:{member}")
        shape, _ = sample_mesh(mesh, num_points, np.random.default_rng([seed, i]), member)
        return shape

    sources = []
    for i, e in enumerate(sorted(models, key=lambda e: e["model"])):
        member = e["model"].lstrip("/")
        sources.append(
            ShapeSource(
                e.get("name", member),
                classes.index(e.get("category", "unknown")),
                split_of(i),
                lambda m=member, i=i: load(m, i),
            )
        )
    if not sources:
        raise ShapeReadError(
            f"{jar}: no OBJ models listed in DefaultFurnitureCatalog.properties", SkipReason.EMPTY
        )
    return sources, {"class_names": classes, "part_names": None}
