"""Shape sets of a config and their caches: one cache per folder, metadata beside the shapes,
classes with no usable file left out, a warning for z-up shapes (issue 15 section 3)."""

import logging

import numpy as np
from rq_points.data.procedural import generate_shapes
from rq_points.data.readers import Shape
from rq_points.data.shape_cache import ShapeCache, ShapeSource, write_shape_cache
from rq_points.data.shape_sets import (
    ShapeSetConfig,
    prepare_shape_set,
    shape_set_cache_path,
    up_axis_warning,
)

TETRAHEDRON_OFF = "OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"


def _npz_folder(folder, names):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        np.savez(folder / name, points=rng.random((40, 3)), normals=np.tile([0, 0, 1.0], (40, 1)))


def test_metadata_beside_the_shape_folder_with_paths_relative_to_root(tmp_path, caplog):
    """The audio contract's layout: shapes/*.npz, metadata.csv beside shapes/, file_name
    relative to shapes/. It used to need metadata.csv inside the folder (313 'not found')."""
    _npz_folder(tmp_path / "shapes", ["a.npz", "b.npz", "c.npz"])
    (tmp_path / "metadata.csv").write_text(
        "file_name,label,split\na.npz,mug,train\nb.npz,cup,train\nc.npz,cup,test\n"
    )
    shapes = ShapeSetConfig(
        source="folder",
        root=str(tmp_path / "shapes"),
        metadata=str(tmp_path / "metadata.csv"),
        num_points=32,
        num_clusters=3,
    )
    cache = prepare_shape_set(shapes, tmp_path / "cache", progress=False)
    assert len(cache) == 3 and cache.class_names == ["cup", "mug"]
    # The same CSV read against the wrong root: every file missing, and the warning says
    # where they were looked for.
    wrong = ShapeSetConfig(
        source="folder", root=str(tmp_path), metadata=str(tmp_path / "metadata.csv")
    )
    with caplog.at_level(logging.WARNING, logger="rq_points"):
        try:
            prepare_shape_set(wrong, tmp_path / "cache", progress=False)
        except ValueError as err:
            assert "3 of 3 shapes could not be read" in str(err)
    assert any(
        f"3 of 3 files listed in {tmp_path / 'metadata.csv'} are not under {tmp_path} "
        "(file_name is relative to data.root)" in m
        for m in caplog.messages
    )


def test_one_folder_named_by_two_shape_sets_is_read_and_cached_once(tmp_path):
    """`data` and `classify_data` on one folder differ only in fields a folder ignores
    (shapes_per_class, splits): one cache, read once."""
    _npz_folder(tmp_path / "shapes", ["a.npz", "b.npz"])
    (tmp_path / "shapes" / "metadata.csv").write_text(
        "file_name,label,split\na.npz,mug,train\nb.npz,cup,test\n"
    )
    data = ShapeSetConfig(
        source="folder",
        root=str(tmp_path / "shapes"),
        shapes_per_class=60,
        num_clusters=3,
        splits=["train"],
    )
    probe = ShapeSetConfig(
        source="folder",
        root=str(tmp_path / "shapes"),
        shapes_per_class=200,
        num_clusters=3,
        splits=["train", "valid", "test"],
    )
    assert shape_set_cache_path(data, tmp_path) == shape_set_cache_path(probe, tmp_path)
    prepare_shape_set(data, tmp_path / "cache", progress=False)
    prepare_shape_set(probe, tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("*.h5"))) == 1
    # Procedural sets do differ by shapes_per_class.
    assert shape_set_cache_path(
        ShapeSetConfig(shapes_per_class=1), tmp_path
    ) != shape_set_cache_path(ShapeSetConfig(shapes_per_class=2), tmp_path)


def test_classes_whose_every_file_was_skipped_are_left_out(tmp_path):
    """It reported '134 shapes, 139 classes' when some classes had no readable file."""
    folder = tmp_path / "shapes"
    folder.mkdir()
    for i in range(4):
        (folder / f"good{i}.off").write_text(TETRAHEDRON_OFF)
    (folder / "bad0.off").write_text("")
    rows = [f"good{i}.off,{'chair' if i < 2 else 'table'},train" for i in range(4)]
    rows.append("bad0.off,lamp,train")  # lamp's only file is empty
    (folder / "metadata.csv").write_text("file_name,label,split\n" + "\n".join(rows) + "\n")
    shapes = ShapeSetConfig(source="folder", root=str(folder), num_points=32, num_clusters=3)
    cache = prepare_shape_set(shapes, tmp_path / "cache", progress=False)
    assert cache.class_names == ["chair", "table"] and cache.num_classes == 2
    assert sorted(set(cache.class_ids.tolist())) == [0, 1]
    summary = write_shape_cache(
        tmp_path / "again.h5",
        [
            ShapeSource(
                "x",
                2,
                "train",
                lambda: Shape(np.random.rand(9, 3).astype(np.float32), np.ones((9, 3), np.float32)),
            )
        ],
        class_names=["a", "b", "c"],
        num_clusters=2,
        progress=False,
    )
    assert summary.num_classes == 1 and summary.dropped_classes == ["a", "b"]
    assert "1 shapes of 1 classes written" in str(summary)
    assert "2 classes left out, no usable shape: ['a', 'b']" in str(summary)


def _cache_of(tmp_path, name, z_up: bool) -> ShapeCache:
    sources = []
    for i, s in enumerate(generate_shapes(3, 128)):
        shape = s.shape
        if z_up:  # the same upright shapes in ModelNet's z-up convention: (x, y, z) -> (x, -z, y)
            turn = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float32)
            shape = Shape(shape.points @ turn, shape.normals @ turn, shape.labels)
        sources.append(ShapeSource(f"s{i}", s.class_id, "train", lambda shape=shape: shape))
    write_shape_cache(
        tmp_path / name,
        sources,
        class_names=[str(c) for c in range(6)],
        num_clusters=4,
        progress=False,
    )
    return ShapeCache(tmp_path / name)


def test_z_up_shapes_are_flagged_when_the_rotation_turns_about_y(tmp_path):
    y_up, z_up = _cache_of(tmp_path, "y.h5", False), _cache_of(tmp_path, "z.h5", True)
    assert up_axis_warning(y_up, up_axis=1) is None  # the embedded family is y-up
    message = up_axis_warning(z_up, up_axis=1)
    assert message is not None and "augmentation.up_axis=2" in message and "z.h5" in message
    assert up_axis_warning(z_up, up_axis=2) is None
