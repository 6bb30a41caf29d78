import json
import zipfile

import numpy as np
from rq_points.data.shape_cache import ShapeCache


def test_shapenet_part_archive(tmp_path, load_script):
    base = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    rng = np.random.default_rng(0)
    synsets = {"Airplane": "02691156", "Mug": "03797390"}
    offsets = {"Airplane": 0, "Mug": 36}
    lists = {"train": [], "val": [], "test": []}
    with zipfile.ZipFile(tmp_path / "part.zip", "w") as z:
        z.writestr(
            f"{base}/synsetoffset2category.txt", "".join(f"{c}\t{s}\n" for c, s in synsets.items())
        )
        for k, (cat, syn) in enumerate(synsets.items()):
            for i, split in enumerate(["train", "train", "val", "test"]):
                sid = f"{k}{i:05d}"
                pts = rng.random((40, 3))
                rows = np.hstack(
                    [
                        pts,
                        np.tile([0, 0, 1.0], (40, 1)),
                        (offsets[cat] + np.arange(40) % 2)[:, None],
                    ]
                )
                z.writestr(
                    f"{base}/{syn}/{sid}.txt",
                    "\n".join(" ".join(f"{x:.5f}" for x in r) for r in rows),
                )
                lists[split].append(f"shape_data/{syn}/{sid}")
        for split, entries in lists.items():
            z.writestr(
                f"{base}/train_test_split/shuffled_{split}_file_list.json", json.dumps(entries)
            )
    script = load_script("shapenet_part")
    assert (
        script.main(
            [
                "--archive",
                str(tmp_path / "part.zip"),
                "--out",
                str(tmp_path / "p.h5"),
                "--num-clusters",
                "4",
            ]
        )
        == 0
    )
    cache = ShapeCache(tmp_path / "p.h5")
    assert cache.class_names == ["Airplane", "Mug"] and cache.num_parts == 6
    assert [len(cache.split_indices(s)) for s in ("train", "valid", "test")] == [4, 2, 2]
    mug = cache[int(np.flatnonzero(cache.class_ids == 1)[0])]
    assert set(mug["labels"].tolist()) == {36, 37}
