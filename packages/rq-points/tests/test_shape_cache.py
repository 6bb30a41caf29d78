import logging

import numpy as np
import pytest
from rq_core.skipped import read_skipped_csv
from rq_points.data.procedural import generate_shape
from rq_points.data.readers import Shape, ShapeReadError, SkipReason
from rq_points.data.shape_cache import ShapeCache, ShapeSource, write_shape_cache
from rq_points.data.sources import folder_sources


def _good(i):
    return ShapeSource(
        f"good{i}",
        i % 2,
        ["train", "valid", "test"][i % 3],
        lambda i=i: generate_shape(i % 2, 64 + i, np.random.default_rng(i)),
    )


def _bad(kind):
    def load():
        if kind == "nan":
            return Shape(np.full((5, 3), np.nan, np.float32), np.ones((5, 3), np.float32))
        if kind == "empty":
            return Shape(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
        raise ShapeReadError("x.off: degenerate mesh (zero surface area)", SkipReason.DEGENERATE)

    return ShapeSource(f"bad_{kind}", 0, "train", load)


def test_roundtrip_and_skipped_shapes_are_counted(tmp_path, caplog):
    sources = [_good(i) for i in range(6)] + [_bad("nan"), _bad("empty"), _bad("degenerate")]
    with caplog.at_level(logging.WARNING, logger="rq_points"):
        summary = write_shape_cache(
            tmp_path / "c.h5",
            sources,
            class_names=["chair", "table"],
            part_names=[["a", "b", "c", "d"], ["e", "f"]],
            num_clusters=5,
            progress=False,
        )
    assert any("skipping bad_nan (non_finite)" in m for m in caplog.messages)
    assert summary.written == 6 and summary.num_skipped == 3
    assert summary.skipped == {"non_finite": 1, "empty": 1, "degenerate": 1}
    assert summary.skipped_csv == tmp_path / "c.skipped.csv"
    assert [r[:2] for r in read_skipped_csv(tmp_path / "c.h5")] == [
        ("bad_nan", "non_finite"),
        ("bad_empty", "empty"),
        ("bad_degenerate", "degenerate"),
    ]
    cache = ShapeCache(tmp_path / "c.h5")
    assert (
        len(cache) == 6 and cache.class_names == ["chair", "table"] and cache.part_offsets == [0, 4]
    )
    for i in range(6):
        expect = generate_shape(i % 2, 64 + i, np.random.default_rng(i))
        item = cache[i]
        np.testing.assert_array_equal(item["points"], expect.points)
        np.testing.assert_array_equal(item["labels"], expect.labels)
        assert item["class_id"] == i % 2 and item["cluster_ids"].max() < 5
    assert cache.split_indices("valid").tolist() == [1, 4]


def test_most_shapes_failing_is_an_error(tmp_path):
    sources = [_good(0), _bad("nan"), _bad("empty")]
    with pytest.raises(ValueError, match="2 of 3 shapes could not be read.*c.skipped.csv"):
        write_shape_cache(tmp_path / "c.h5", sources, class_names=["a", "b"], progress=False)
    assert not (tmp_path / "c.h5").exists()
    assert [r[0] for r in read_skipped_csv(tmp_path / "c.h5")] == ["bad_nan", "bad_empty"]


TETRAHEDRON_OFF = "OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"


def test_skip_reasons_are_fixed_where_raised_not_read_from_names(tmp_path, caplog):
    """Issue 13 / 15: the reason used to be guessed from words in the message, path included (a
    zero-byte file was 'empty' only because of its name; 'nan' in a name counted as NaN). Each
    failure now carries its reason from the reader, whatever the file is called."""
    files = {f"chair/good{i}.off": TETRAHEDRON_OFF for i in range(10)}
    files.update(
        {
            "chair/nan.off": TETRAHEDRON_OFF,  # valid despite its name
            "chair/empty_but_fine.off": TETRAHEDRON_OFF,  # valid despite its name
            "chair/bad_empty.off": "OFF\n4 4 0\n0 0 0\n1 0\n",  # not empty: malformed
            "chair/zero.off": "",  # zero bytes
            "chair/nan_flat.off": "OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n",  # collinear
            "chair/not_a_mesh.off": "solid cube\nfacet normal 0 0 1\n",  # an STL named .off
            "chair/text.npz": "points,normals\n",  # text named .npz
            "chair/cube.stl": "solid cube\n",  # no reader for .stl
            "chair/inf.xyz": "0 0 0 0 0 1\ninf 1 0 0 0 1\n",
            "chair/no_faces.off": "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n",
        }
    )
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    listed = [*files, "chair/gone.off"]  # listed in metadata, not on disk
    (tmp_path / "metadata.csv").write_text(
        "file_name,label,split\n" + "".join(f"{rel},chair,train\n" for rel in listed)
    )
    sources, meta = folder_sources(tmp_path, num_points=64)
    with caplog.at_level(logging.WARNING, logger="rq_points"):
        summary = write_shape_cache(
            tmp_path / "c.h5",
            sources,
            class_names=meta["class_names"],
            num_clusters=4,
            progress=False,
        )
    expected = {
        "chair/bad_empty.off": "malformed",
        "chair/zero.off": "empty",
        "chair/nan_flat.off": "degenerate",
        "chair/not_a_mesh.off": "wrong_format",
        "chair/text.npz": "wrong_format",
        "chair/cube.stl": "unsupported_format",
        "chair/inf.xyz": "non_finite",
        "chair/no_faces.off": "no_faces",
        "chair/gone.off": "missing",
    }
    assert dict(summary.skipped_files) == expected
    assert summary.written == 12  # good0-9, nan.off, empty_but_fine.off
    assert {r[0]: r[1] for r in read_skipped_csv(tmp_path / "c.h5")} == expected
    for name, reason in expected.items():  # each named in the log with its reason
        assert any(f"skipping {name} ({reason})" in m for m in caplog.messages), name


def test_missing_cache_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="rq-mid-net prepare"):
        ShapeCache(tmp_path / "none.h5")
