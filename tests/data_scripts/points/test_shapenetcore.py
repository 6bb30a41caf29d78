import tarfile

from rq_points.data.shape_cache import ShapeCache


def test_local_copy_v1_and_v2_layouts(tmp_path, load_script, tetra):
    src = tmp_path / "ShapeNetCore"
    obj = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"
    for syn, model, rel in (
        ("02691156", "a1", "model.obj"),
        ("02691156", "a2", "model.obj"),
        ("03001627", "c1", "models/model_normalized.obj"),
    ):
        p = src / syn / model / rel
        p.parent.mkdir(parents=True)
        p.write_text(obj)
    (src / "03001627" / "c1" / "models" / "other.obj").write_text(obj)  # not a model file
    with tarfile.open(tmp_path / "core.tar.gz", "w:gz") as t:
        t.add(src, arcname="ShapeNetCore")
    script = load_script("shapenetcore")
    for archive in (src, tmp_path / "core.tar.gz"):
        out = tmp_path / f"{archive.name}.h5"
        assert (
            script.main(
                [
                    "--archive",
                    str(archive),
                    "--out",
                    str(out),
                    "--num-points",
                    "50",
                    "--num-clusters",
                    "3",
                ]
            )
            == 0
        )
        cache = ShapeCache(out)
        assert len(cache) == 3 and cache.class_names == ["02691156", "03001627"]
        assert len(cache.split_indices("train")) == 3
