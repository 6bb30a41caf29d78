import struct

import numpy as np
import pytest
from rq_points.data.readers import (
    Mesh,
    ShapeReadError,
    load_shape,
    read_mesh,
    read_point_file,
    read_shapenet_part_txt,
    sample_mesh,
)

RNG = np.random.default_rng(0)


def test_off_with_counts_glued_to_header(tmp_path):
    p = tmp_path / "m.off"
    p.write_text("OFF4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")  # ModelNet40's broken header
    mesh = read_mesh(p)
    assert mesh.vertices.shape == (4, 3) and mesh.faces.shape == (2, 3)


@pytest.mark.parametrize("header", ["COFF", "NOFF", "CNOFF", "coff"])
def test_off_variants_with_colours_or_normals_are_meshes(tmp_path, header):
    """Issue 15: real COFF meshes (a colour after each vertex and face) were refused as "not
    an OFF file"."""
    extra = {
        "COFF": " 255 0 0 255",
        "coff": " 255 0 0 255",
        "NOFF": " 0 0 1",
        "CNOFF": " 0 0 1 255 0 0 255",
    }[header]
    vertices = "".join(f"{x} {y} 0{extra}\n" for x, y in [(0, 0), (1, 0), (1, 1), (0, 1)])
    p = tmp_path / "m.off"
    p.write_text(f"{header}\n4 1 0\n{vertices}4 0 1 2 3 255 255 255\n")
    mesh = read_mesh(p)
    assert mesh.vertices.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    assert load_shape(p, 16, RNG).points.shape == (16, 3)


def test_four_dimensional_off_is_refused_as_unsupported(tmp_path):
    p = tmp_path / "m.off"
    p.write_text("4OFF\n3 1 0\n0 0 0 0\n1 0 0 0\n0 1 0 0\n3 0 1 2\n")
    with pytest.raises(ShapeReadError, match="4OFF meshes") as err:
        read_mesh(p)
    assert err.value.reason == "unsupported_format"


def test_obj_groups_quads_and_negative_indices(tmp_path):
    p = tmp_path / "m.obj"
    p.write_text(
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\ng seat\nf 1/1/1 2/2/2 3/3/3 4/4/4\n"
        "v 0 0 1\ng back\nf -1 1 2\n"
    )
    mesh = read_mesh(p)
    assert mesh.faces.shape == (3, 3)
    assert mesh.group_names == ["default", "seat", "back"]
    assert mesh.face_groups.tolist() == [1, 1, 2]
    assert mesh.faces[2].tolist() == [4, 0, 1]


def _ply_binary(path, with_faces=True):
    verts = np.array([[0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 1]], np.float32)
    header = (
        "ply\nformat binary_little_endian 1.0\nelement vertex 3\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
    )
    if with_faces:
        header += "element face 1\nproperty list uchar int vertex_indices\n"
    header += "end_header\n"
    body = verts.tobytes()
    if with_faces:
        body += struct.pack("<B3i", 3, 0, 1, 2)
    path.write_bytes(header.encode() + body)


def test_ply_binary_mesh_and_points(tmp_path):
    _ply_binary(tmp_path / "m.ply", True)
    mesh = read_mesh(tmp_path / "m.ply")
    assert mesh.faces.tolist() == [[0, 1, 2]]
    _ply_binary(tmp_path / "p.ply", False)
    shape = read_point_file(tmp_path / "p.ply")
    assert shape.points.shape == (3, 3) and np.allclose(shape.normals[:, 2], 1)


def test_ply_ascii_mesh(tmp_path):
    p = tmp_path / "a.ply"
    p.write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    )
    shape = load_shape(p, 10, RNG)
    assert shape.points.shape == (10, 3) and np.allclose(np.abs(shape.normals[:, 2]), 1)


def test_npz_and_xyz_and_shapenet_part(tmp_path):
    pts = RNG.random((20, 3)).astype(np.float32)
    nrm = np.tile([0, 2.0, 0], (20, 1))  # not unit: the reader normalizes
    np.savez(tmp_path / "s.npz", points=pts, normals=nrm, labels=np.arange(20))
    s = read_point_file(tmp_path / "s.npz")
    assert np.allclose(s.normals, [0, 1, 0]) and s.labels.tolist() == list(range(20))
    np.savetxt(tmp_path / "s.xyz", np.hstack([pts, nrm]))
    assert read_point_file(tmp_path / "s.xyz").labels is None
    np.savetxt(tmp_path / "p.txt", np.hstack([pts, nrm, np.arange(20)[:, None] % 4]))
    part = read_shapenet_part_txt(tmp_path / "p.txt")
    assert part.labels.tolist() == [i % 4 for i in range(20)]
    with pytest.raises(ShapeReadError, match="7 columns"):
        read_shapenet_part_txt(tmp_path / "s.xyz")


def test_area_weighted_sampling():
    # Two triangles with areas 1 and 3: three times more points on the second.
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 1], [0, 3, 1], [2, 0, 1]], float)
    shape, face = sample_mesh(Mesh(v, np.array([[0, 1, 2], [3, 4, 5]])), 20000, RNG)
    assert abs((face == 1).mean() - 0.75) < 0.02
    assert np.allclose(np.linalg.norm(shape.normals, axis=1), 1, atol=1e-5)


def test_bad_shapes_raise_naming_the_problem(tmp_path):
    with pytest.raises(ShapeReadError, match="degenerate"):
        sample_mesh(
            Mesh(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], float), np.array([[0, 1, 2]])), 5, RNG
        )
    with pytest.raises(ShapeReadError, match="NaN"):
        sample_mesh(
            Mesh(np.array([[0, 0, 0], [np.nan, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]])), 5, RNG
        )
    np.savez(tmp_path / "nan.npz", points=np.full((4, 3), np.nan), normals=np.ones((4, 3)))
    with pytest.raises(ShapeReadError, match="NaN"):
        read_point_file(tmp_path / "nan.npz")
    (tmp_path / "e.xyz").write_text("")
    with pytest.raises(ShapeReadError, match="empty"):
        read_point_file(tmp_path / "e.xyz")
    (tmp_path / "x.off").write_text("solid cube\n")  # an STL named .off
    with pytest.raises(ShapeReadError, match="not an OFF"):
        read_mesh(tmp_path / "x.off")
    (tmp_path / "y.off").write_text("NOFF\n")  # a valid OFF variant header, but no counts
    with pytest.raises(ShapeReadError, match="malformed OFF") as err:
        read_mesh(tmp_path / "y.off")
    assert err.value.reason == "malformed"


def test_a_text_file_named_npz_says_so_not_pickled_data(tmp_path):
    """numpy's own message for it is "Cannot load file containing pickled data when
    allow_pickle=False", which sends a user looking for pickles."""
    p = tmp_path / "chair.npz"
    p.write_text("x,y,z\n0,0,0\n")
    with pytest.raises(ShapeReadError) as err:
        read_point_file(p)
    assert "not a NumPy .npz archive" in str(err.value) and "pickle" not in str(err.value)
    assert err.value.reason == "wrong_format"
