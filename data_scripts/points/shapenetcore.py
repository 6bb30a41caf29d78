"""ShapeNetCore (your local copy, v1 or v2) -> an rq-points HDF5 cache for MID-Net pretraining.

ShapeNet's licence forbids redistribution, so there is no download: point ``--archive`` at
your ShapeNetCore folder or zip. Meshes are found as ``<synset>/<model>/model.obj`` (v1) or
``<synset>/<model>/models/model_normalized.obj`` (v2), sampled area-weighted with face
normals. Every shape goes to ``train`` (pretraining uses them all: 57,449 in the paper's
ShapeNetCore v1, ``inst_num: 57449`` in ``mid_hrnet_d6.yaml``); classes are synset ids.

    python data_scripts/points/shapenetcore.py --archive /data/ShapeNetCore.v2.zip --out shapenet.h5
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from _common import extracted_root, parser
from rq_points.data.readers import load_shape
from rq_points.data.shape_cache import ShapeSource, write_shape_cache

SYNSET = re.compile(r"^\d{8}$")


def mesh_files(root: Path) -> list[tuple[str, Path]]:
    """(synset, mesh path) of every model, v1 and v2 layouts."""
    found = []
    for path in sorted(root.rglob("*.obj")):
        parts = path.relative_to(root).parts
        synsets = [p for p in parts if SYNSET.match(p)]
        if not synsets:
            continue
        if path.name == "model.obj" or path.name == "model_normalized.obj":
            found.append((synsets[-1], path))
    if not found:
        raise FileNotFoundError(
            f"{root}: no <synset>/<model>/(model.obj|models/model_normalized.obj) meshes"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    root = extracted_root(args.archive, args.sha256, args.work_dir, args.out)
    meshes = mesh_files(root)
    if args.limit:
        meshes = meshes[: args.limit]
    synsets = sorted({s for s, _ in meshes})
    sources = [
        ShapeSource(
            str(p.relative_to(root)),
            synsets.index(s),
            "train",
            lambda p=p, i=i: load_shape(p, args.num_points, np.random.default_rng(i)),
        )
        for i, (s, p) in enumerate(meshes)
    ]
    print(write_shape_cache(args.out, sources, class_names=synsets, num_clusters=args.num_clusters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
