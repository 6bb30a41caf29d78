import zipfile

import h5py
import numpy as np
from rq_points.data.shape_cache import ShapeCache


def test_off_archive(tmp_path, load_script, tetra):
    with zipfile.ZipFile(tmp_path / "ModelNet40.zip", "w") as z:
        for cls in ("chair", "bed"):
            for split, n in (("train", 11), ("test", 2)):
                for i in range(n):
                    z.writestr(f"ModelNet40/{cls}/{split}/{cls}_{split}_{i:04d}.off", tetra(i))
        z.writestr("ModelNet40/bed/train/broken.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n")
    script = load_script("modelnet40")
    assert (
        script.main(
            [
                "--archive",
                str(tmp_path / "ModelNet40.zip"),
                "--out",
                str(tmp_path / "m.h5"),
                "--num-points",
                "64",
                "--num-clusters",
                "4",
            ]
        )
        == 0
    )
    cache = ShapeCache(tmp_path / "m.h5")
    assert cache.class_names == ["bed", "chair"]
    assert len(cache) == 26  # the collinear (degenerate) mesh is skipped
    assert len(cache.split_indices("test")) == 4 and len(cache.split_indices("valid")) == 4
    assert cache[0]["points"].shape == (64, 3)


def test_hdf5_variant(tmp_path, load_script):
    root = tmp_path / "modelnet40_ply_hdf5_2048"
    root.mkdir()
    rng = np.random.default_rng(0)
    (root / "shape_names.txt").write_text("airplane\nbathtub\n")
    for name, n in (("ply_data_train0.h5", 6), ("ply_data_test0.h5", 3)):
        with h5py.File(root / name, "w") as f:
            f["data"] = rng.random((n, 32, 3)).astype(np.float32)
            f["normal"] = np.tile(np.float32([0, 1, 0]), (n, 32, 1))
            f["label"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    script = load_script("modelnet40")
    with zipfile.ZipFile(tmp_path / "h.zip", "w") as z:
        for p in root.iterdir():
            z.write(p, f"modelnet40_ply_hdf5_2048/{p.name}")
    assert (
        script.main(
            [
                "--archive",
                str(tmp_path / "h.zip"),
                "--out",
                str(tmp_path / "h.h5"),
                "--num-clusters",
                "4",
            ]
        )
        == 0
    )
    cache = ShapeCache(tmp_path / "h.h5")
    assert len(cache) == 9 and cache.class_names == ["airplane", "bathtub"]
    assert len(cache.split_indices("test")) == 3
    with h5py.File(root / "ply_data_test0.h5", "r") as f:
        np.testing.assert_array_equal(cache[cache.split_indices("test")[1]]["points"], f["data"][1])
