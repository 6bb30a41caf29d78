import zipfile

import numpy as np
import pytest
from rq_points.data.shape_cache import ShapeCache, write_shape_cache
from rq_points.data.sources import folder_sources, procedural_sources, sweethome3d_sources

OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\ng seat\nf 1 2 3\nf 1 2 4\ng back\nf 1 3 4\nf 2 3 4\n"


def test_folder_with_metadata(tmp_path):
    (tmp_path / "a.obj").write_text(OBJ)
    np.savez(
        tmp_path / "b.npz", points=np.random.rand(30, 3), normals=np.tile([0, 0, 1.0], (30, 1))
    )
    (tmp_path / "metadata.csv").write_text(
        "file_name,label,split\na.obj,mug,train\nb.npz,cup,test\n"
    )
    sources, meta = folder_sources(tmp_path, 40)
    assert meta["class_names"] == ["cup", "mug"]
    write_shape_cache(
        tmp_path / "c.h5", sources, class_names=meta["class_names"], num_clusters=3, progress=False
    )
    cache = ShapeCache(tmp_path / "c.h5")
    assert [cache[i]["points"].shape for i in range(2)] == [(40, 3), (40, 3)]
    assert cache.class_ids.tolist() == [1, 0]
    (tmp_path / "metadata.csv").write_text("file_name,label,split\na.obj,mug,holdout\n")
    with pytest.raises(ValueError, match="row 2: split must be one of"):
        folder_sources(tmp_path, 40)


def test_sweethome3d_jar(tmp_path):
    jar = tmp_path / "sweethome3d.jar"
    props = (
        "name#1=Chair\ncategory#1=Kitchen\nmodel#1=/com/eteks/sweethome3d/io/resources/chair.obj\n"
        "name#2=Bed\ncategory#2=Bedroom\nmodel#2=/com/eteks/sweethome3d/io/resources/bed.obj\n"
    )
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties", props)
        z.writestr("com/eteks/sweethome3d/io/resources/chair.obj", OBJ)
        z.writestr("com/eteks/sweethome3d/io/resources/bed.obj", OBJ)
    sources, meta = sweethome3d_sources(jar, 100)
    assert meta["class_names"] == ["Bedroom", "Kitchen"]
    shape = sources[1].load()
    assert shape.points.shape == (100, 3) and set(shape.labels.tolist()) == {1, 2}  # OBJ groups
    with pytest.raises(FileNotFoundError, match="apt-get download sweethome3d"):
        sweethome3d_sources(tmp_path / "missing.jar", 10)


def test_procedural_sources_split_every_class():
    sources, meta = procedural_sources(10, 64)
    assert len(sources) == 60 and len(meta["class_names"]) == 6
    for c in range(6):
        splits = {s.split for s in sources if s.class_id == c}
        assert splits == {"train", "valid", "test"}
