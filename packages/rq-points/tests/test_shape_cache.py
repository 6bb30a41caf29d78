import numpy as np
import pytest
from rq_points.procedural import generate_shape
from rq_points.readers import Shape, ShapeReadError
from rq_points.shape_cache import ShapeCache, ShapeSource, write_shape_cache


def _good(i):
    return ShapeSource(f"good{i}", i % 2, ["train", "valid", "test"][i % 3],
                       lambda i=i: generate_shape(i % 2, 64 + i, np.random.default_rng(i)))


def _bad(kind):
    def load():
        if kind == "nan":
            return Shape(np.full((5, 3), np.nan, np.float32), np.ones((5, 3), np.float32))
        if kind == "empty":
            return Shape(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
        raise ShapeReadError("x.off: degenerate mesh (zero surface area)")
    return ShapeSource(f"bad_{kind}", 0, "train", load)


def test_roundtrip_and_skipped_shapes_are_counted(tmp_path):
    sources = [_good(i) for i in range(6)] + [_bad("nan"), _bad("empty"), _bad("degenerate")]
    with pytest.warns(UserWarning, match="skipping bad_nan"):
        summary = write_shape_cache(tmp_path / "c.h5", sources, class_names=["chair", "table"],
                                    part_names=[["a", "b", "c", "d"], ["e", "f"]], num_clusters=5, progress=False)
    assert summary.written == 6 and summary.num_skipped == 3
    assert summary.skipped == {"nan": 1, "empty": 1, "degenerate": 1}
    cache = ShapeCache(tmp_path / "c.h5")
    assert len(cache) == 6 and cache.class_names == ["chair", "table"] and cache.part_offsets == [0, 4]
    for i in range(6):
        expect = generate_shape(i % 2, 64 + i, np.random.default_rng(i))
        item = cache[i]
        np.testing.assert_array_equal(item["points"], expect.points)
        np.testing.assert_array_equal(item["labels"], expect.labels)
        assert item["class_id"] == i % 2 and item["cluster_ids"].max() < 5
    assert cache.split_indices("valid").tolist() == [1, 4]


def test_most_shapes_failing_is_an_error(tmp_path):
    sources = [_good(0), _bad("nan"), _bad("empty")]
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="2 of 3 shapes could not be read"):
        write_shape_cache(tmp_path / "c.h5", sources, class_names=["a", "b"], progress=False)
    assert not (tmp_path / "c.h5").exists()


def test_missing_cache_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="rq-mid-net prepare"):
        ShapeCache(tmp_path / "none.h5")
