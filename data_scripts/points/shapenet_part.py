"""ShapeNet Part (normal-resampled release) -> an rq-points HDF5 cache (RQ paper Table 6).

Input: ``shapenetcore_partanno_segmentation_benchmark_v0_normal`` (zip or folder) with
``synsetoffset2category.txt``, ``<synset>/<id>.txt`` (x y z nx ny nz part) and
``train_test_split/shuffled_{train,val,test}_file_list.json``. Part ids are the dataset's
global ids (50 parts over 16 categories, categories in alphabetical order).

    python data_scripts/points/shapenet_part.py --archive shapenet_part.zip --out shapenet_part.h5
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _common import extracted_root, parser
from rq_points.data.readers import read_shapenet_part_txt
from rq_points.data.shape_cache import ShapeSource, write_shape_cache

# Parts per category (the benchmark's 50 global part ids, categories alphabetically).
NUM_PARTS = {
    "Airplane": 4,
    "Bag": 2,
    "Cap": 2,
    "Car": 4,
    "Chair": 4,
    "Earphone": 3,
    "Guitar": 3,
    "Knife": 2,
    "Lamp": 4,
    "Laptop": 2,
    "Motorbike": 6,
    "Mug": 2,
    "Pistol": 3,
    "Rocket": 3,
    "Skateboard": 3,
    "Table": 3,
}
SPLIT_FILES = {
    "train": "shuffled_train_file_list.json",
    "valid": "shuffled_val_file_list.json",
    "test": "shuffled_test_file_list.json",
}


def sources_of(
    root: Path, num_points: int | None = None
) -> tuple[list[ShapeSource], list[str], list[list[str]]]:
    cat_files = sorted(root.rglob("synsetoffset2category.txt"))
    if not cat_files:
        raise FileNotFoundError(
            f"{root}: synsetoffset2category.txt not found (is this ShapeNet Part?)"
        )
    base = cat_files[0].parent
    synset_to_cat = dict(
        reversed(ln.split()) for ln in cat_files[0].read_text().splitlines() if ln.strip()
    )
    categories = sorted(synset_to_cat.values())
    unknown = set(categories) - set(NUM_PARTS)
    if unknown:
        raise ValueError(f"{cat_files[0]}: unknown categories {sorted(unknown)}")
    part_names = [[f"{c.lower()}_{k}" for k in range(NUM_PARTS[c])] for c in categories]
    sources = []
    for split, fname in SPLIT_FILES.items():
        lists = sorted(base.rglob(fname))
        if not lists:
            raise FileNotFoundError(f"{base}: train_test_split/{fname} not found")
        for entry in json.loads(lists[0].read_text()):
            _, synset, shape_id = entry.split("/")[-3:]
            path = base / synset / f"{shape_id}.txt"
            cls = categories.index(synset_to_cat[synset])
            sources.append(
                ShapeSource(
                    f"{synset}/{shape_id}", cls, split, lambda p=path: read_shapenet_part_txt(p)
                )
            )
    return sources, categories, part_names


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    root = extracted_root(args.archive, args.sha256, args.work_dir, args.out)
    sources, categories, part_names = sources_of(root)
    if args.limit:
        sources = sources[: args.limit]
    print(
        write_shape_cache(
            args.out,
            sources,
            class_names=categories,
            part_names=part_names,
            num_clusters=args.num_clusters,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
