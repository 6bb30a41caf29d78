"""ModelNet40 -> an rq-points HDF5 cache (classification, RQ paper Table 5).

Accepts the .off archive (``ModelNet40/<class>/{train,test}/<class>_0001.off``; meshes are
sampled area-weighted with face normals) or PointNet's HDF5 variant
(``modelnet40_ply_hdf5_2048/ply_data_{train,test}*.h5`` with ``data``, ``normal``, ``label``
and ``shape_names.txt``). Every tenth training shape of a class becomes validation.

    python data_scripts/points/modelnet40.py --archive ModelNet40.zip --out modelnet40.h5
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
from _common import extracted_root, parser, valid_split
from rq_points.data.readers import Shape, load_shape
from rq_points.data.shape_cache import ShapeSource, write_shape_cache


def off_sources(root: Path, num_points: int) -> tuple[list[ShapeSource], list[str]]:
    files = sorted(root.rglob("*.off"))
    by_class: dict[str, list[Path]] = {}
    for f in files:
        if f.parent.name in ("train", "test"):
            by_class.setdefault(f.parent.parent.name, []).append(f)
    if not by_class:
        raise FileNotFoundError(
            f"{root}: no <class>/{{train,test}}/*.off files (is this ModelNet40?)"
        )
    classes = sorted(by_class)
    sources = []
    for c, name in enumerate(classes):
        train_count = 0
        for i, f in enumerate(by_class[name]):
            split = "test" if f.parent.name == "test" else valid_split(train_count)
            train_count += f.parent.name == "train"
            sources.append(
                ShapeSource(
                    str(f.relative_to(root)),
                    c,
                    split,
                    lambda f=f, i=i: load_shape(f, num_points, np.random.default_rng(i)),
                )
            )
    return sources, classes


def hdf5_sources(root: Path) -> tuple[list[ShapeSource], list[str]]:
    files = sorted(root.rglob("ply_data_*.h5"))
    names = sorted(root.rglob("shape_names.txt"))
    if not files or not names:
        raise FileNotFoundError(
            f"{root}: no ply_data_*.h5 + shape_names.txt (PointNet's HDF5 variant)"
        )
    classes = [ln.strip() for ln in names[0].read_text().splitlines() if ln.strip()]
    sources, seen = [], {}
    for path in files:
        with h5py.File(path, "r") as f:
            if "normal" not in f:
                raise ValueError(
                    f"{path}: no 'normal' dataset; use modelnet40_ply_hdf5_2048 (it has normals) "
                    "or the .off archive"
                )
            n = f["data"].shape[0]
            labels = f["label"][()].reshape(-1).astype(int)
        for k in range(n):
            c = int(labels[k])
            is_test = "test" in path.name
            count = seen.get(c, 0)
            seen[c] = count + (not is_test)

            def load(path=path, k=k):
                with h5py.File(path, "r") as f:
                    return Shape(f["data"][k].astype(np.float32), f["normal"][k].astype(np.float32))

            sources.append(
                ShapeSource(f"{path.name}:{k}", c, "test" if is_test else valid_split(count), load)
            )
    return sources, classes


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    root = extracted_root(args.archive, args.sha256, args.work_dir, args.out)
    if any(root.rglob("ply_data_*.h5")):
        sources, classes = hdf5_sources(root)
    else:
        sources, classes = off_sources(root, args.num_points)
    if args.limit:
        sources = sources[: args.limit]
    summary = write_shape_cache(
        args.out, sources, class_names=classes, num_clusters=args.num_clusters
    )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
