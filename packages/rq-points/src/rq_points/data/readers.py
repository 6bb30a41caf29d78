"""Readers for shapes on disk: meshes sampled to points, point files, ShapeNet Part txt.

Every reader returns a :class:`Shape` (points + unit normals + optional per-point labels,
all numpy) or raises :class:`ShapeReadError` naming the file and the problem, with a fixed
:class:`SkipReason` chosen where it is raised (never guessed from the message, which holds the
path). Callers that read whole datasets catch that error, skip the shape and count it by
reason (see :mod:`rq_points.data.shape_cache`).

Meshes (.off, .obj, .ply with faces) are sampled area-weighted: a face is drawn with
probability proportional to its area, a point uniformly inside it (square-root barycentric
trick), and the point gets the face's normal.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

__all__ = [
    "Mesh",
    "Shape",
    "ShapeReadError",
    "SkipReason",
    "check_shape",
    "load_shape",
    "parse_obj",
    "read_mesh",
    "read_off",
    "read_ply",
    "read_point_file",
    "read_shapenet_part_txt",
    "sample_mesh",
]

MESH_SUFFIXES = (".off", ".obj")
POINT_SUFFIXES = (".npz", ".xyz", ".txt", ".pts")


class SkipReason(StrEnum):
    """Why a shape was skipped (the ``reason`` column of ``<cache>.skipped.csv``)."""

    MISSING = "missing"  # listed (metadata.csv) but not on disk
    UNREADABLE = "unreadable"  # the file cannot be read (permissions, I/O error)
    EMPTY = "empty"  # a zero-byte file, or no points / vertices in it
    WRONG_FORMAT = "wrong_format"  # the content is not the format its suffix names
    UNSUPPORTED_FORMAT = "unsupported_format"  # a suffix or PLY encoding with no reader here
    MALFORMED = "malformed"  # the right format, but counts, numbers or indices do not parse
    NO_FACES = "no_faces"  # a mesh is needed and the file has vertices but no faces
    MISSING_FIELDS = "missing_fields"  # needed arrays/columns absent (normals, labels, x/y/z)
    MISMATCHED_ARRAYS = "mismatched_arrays"  # points, normals and labels of different lengths
    NON_FINITE = "non_finite"  # NaN or Inf coordinates or normals
    DEGENERATE = "degenerate"  # zero surface area, or all points at one place


class ShapeReadError(ValueError):
    """A shape file that cannot be used; ``reason`` is the fixed kind of failure."""

    def __init__(self, message: str, reason: SkipReason) -> None:
        super().__init__(message)
        self.reason = SkipReason(reason)

    def __reduce__(self):  # picklable across processes despite the extra argument
        return type(self), (str(self), self.reason)


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes; a missing, unreadable or zero-byte file is a :class:`ShapeReadError`."""
    path = Path(path)
    if not path.is_file():
        raise ShapeReadError(f"{path}: file not found", SkipReason.MISSING)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ShapeReadError(f"{path}: cannot read ({err})", SkipReason.UNREADABLE) from err
    if not data:
        raise ShapeReadError(f"{path}: empty file (0 bytes)", SkipReason.EMPTY)
    return data


def _read_text(path: str | os.PathLike) -> str:
    return _read_bytes(path).decode("utf-8", errors="replace")


@dataclass
class Mesh:
    """A polygon mesh triangulated to ``faces`` (F, 3) int64 into ``vertices`` (V, 3) float64.

    ``face_groups`` (F,) int64 indexes ``group_names`` (OBJ ``g``/``o`` groups; one group
    ``"default"`` for formats without groups).
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_groups: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    group_names: list[str] = field(default_factory=lambda: ["default"])

    def __post_init__(self) -> None:
        if self.face_groups.shape[0] != self.faces.shape[0]:
            self.face_groups = np.zeros(self.faces.shape[0], np.int64)


@dataclass
class Shape:
    """A point cloud: ``points`` (N, 3) float32, unit ``normals`` (N, 3) float32, and
    ``labels`` (N,) int64 per-point part labels or ``None``."""

    points: np.ndarray
    normals: np.ndarray
    labels: np.ndarray | None = None


def check_shape(shape: Shape, source: str = "shape") -> Shape:
    """Validate a shape (non-empty, finite, matching lengths); returns it or raises."""
    p, n = shape.points, shape.normals
    if p.ndim != 2 or p.shape[1] != 3:
        raise ShapeReadError(
            f"{source}: points must be (N, 3), got {p.shape}", SkipReason.MALFORMED
        )
    if p.shape[0] == 0:
        raise ShapeReadError(f"{source}: empty shape (0 points)", SkipReason.EMPTY)
    if n.shape != p.shape:
        raise ShapeReadError(
            f"{source}: normals {n.shape} do not match points {p.shape}",
            SkipReason.MISMATCHED_ARRAYS,
        )
    if not (np.isfinite(p).all() and np.isfinite(n).all()):
        bad = int((~np.isfinite(p).all(1) | ~np.isfinite(n).all(1)).sum())
        raise ShapeReadError(
            f"{source}: {bad} points or normals are NaN/Inf", SkipReason.NON_FINITE
        )
    if shape.labels is not None and shape.labels.shape != (p.shape[0],):
        raise ShapeReadError(
            f"{source}: labels {shape.labels.shape} do not match {p.shape[0]} points",
            SkipReason.MISMATCHED_ARRAYS,
        )
    extent = p.max(0) - p.min(0)
    if float(extent.max()) <= 0.0:
        raise ShapeReadError(
            f"{source}: degenerate shape (all points coincide)", SkipReason.DEGENERATE
        )
    return shape


# ------------------------------------------------------------------------------ meshes


def _triangulate(polygons: list[list[int]]) -> np.ndarray:
    tris = [(poly[0], poly[i], poly[i + 1]) for poly in polygons for i in range(1, len(poly) - 1)]
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


# OFF and its variants (Geomview's OFF spec): ST (texture coordinates), C (colours), N
# (normals) before each vertex's extra numbers, which are ignored after x y z; faces may carry
# colours after their indices. 4OFF / nOFF (higher-dimensional vertices) are refused.
_OFF_HEADER = re.compile(r"(?:ST)?C?N?(4|n)?OFF", re.IGNORECASE)


def read_off(path: str | os.PathLike) -> Mesh:
    """Read an OFF mesh: ``OFF``, ``COFF`` (coloured), ``NOFF``, ``CNOFF``, ``STOFF`` headers,
    also the ModelNet40 variant with the counts glued to the header."""
    text = _read_text(path)
    tokens_lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in tokens_lines if ln]
    if not lines:
        raise ShapeReadError(f"{path}: empty OFF file (only blanks and comments)", SkipReason.EMPTY)
    header = _OFF_HEADER.match(lines[0])
    if header is None:
        raise ShapeReadError(
            f"{path}: not an OFF file (first line {lines[:1]!r})", SkipReason.WRONG_FORMAT
        )
    if header.group(1):
        raise ShapeReadError(
            f"{path}: {header.group(0)} meshes (4-D or n-D vertices) are not supported",
            SkipReason.UNSUPPORTED_FORMAT,
        )
    head = lines[0][header.end() :].split()
    rest = lines[1:]
    try:
        if not head:
            head, rest = rest[0].split(), rest[1:]
        nv, nf = int(head[0]), int(head[1])
        vertices = np.array([rest[i].split()[:3] for i in range(nv)], dtype=np.float64)
        polygons = []
        for line in rest[nv : nv + nf]:
            vals = line.split()
            k = int(vals[0])
            polygons.append([int(v) for v in vals[1 : 1 + k]])
    except (IndexError, ValueError) as err:
        raise ShapeReadError(f"{path}: malformed OFF ({err})", SkipReason.MALFORMED) from err
    return Mesh(vertices.reshape(-1, 3), _triangulate(polygons))


def parse_obj(text: str, source: str = "<obj>") -> Mesh:
    """Parse Wavefront OBJ text: ``v`` and ``f`` records (``v/vt/vn``, negative indices),
    ``g``/``o`` groups kept per face."""
    vertices: list[list[float]] = []
    polygons: list[list[int]] = []
    groups: list[int] = []
    names: list[str] = ["default"]
    current = 0
    try:
        for line in text.splitlines():
            if line.startswith("v "):
                vertices.append([float(v) for v in line.split()[1:4]])
            elif line.startswith("f "):
                idx = []
                for tok in line.split()[1:]:
                    i = int(tok.split("/")[0])
                    idx.append(i - 1 if i > 0 else len(vertices) + i)
                polygons.append(idx)
                groups.append(current)
            elif line.startswith(("g ", "o ")):
                name = line[2:].strip() or "default"
                if name not in names:
                    names.append(name)
                current = names.index(name)
    except ValueError as err:
        raise ShapeReadError(f"{source}: malformed OBJ ({err})", SkipReason.MALFORMED) from err
    faces = _triangulate(polygons)
    face_groups = (
        np.repeat(np.asarray(groups, np.int64), [max(len(p) - 2, 0) for p in polygons])
        if polygons
        else np.zeros(0, np.int64)
    )
    return Mesh(np.asarray(vertices, np.float64).reshape(-1, 3), faces, face_groups, names)


_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def read_ply(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Read a PLY file (ascii, binary little or big endian).

    Returns the vertex properties by name (each (V,)) and the triangulated faces (F, 3) or
    ``None`` when the file has no faces (a point file).
    """
    data = _read_bytes(path)
    end = data.find(b"end_header")
    if not data.startswith(b"ply"):
        raise ShapeReadError(f"{path}: not a PLY file (no 'ply' magic)", SkipReason.WRONG_FORMAT)
    if end < 0:
        raise ShapeReadError(f"{path}: malformed PLY (no end_header)", SkipReason.MALFORMED)
    header = data[:end].decode("ascii", errors="replace").splitlines()
    newline = data.find(b"\n", end)
    body_start = len(data) if newline < 0 else newline + 1
    fmt = ""
    elements: list[tuple[str, int, list[tuple[str, str, str | None]]]] = []
    try:
        for line in header:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "format":
                fmt = parts[1]
            elif parts[0] == "element":
                elements.append((parts[1], int(parts[2]), []))
            elif parts[0] == "property" and elements:
                if parts[1] == "list":
                    elements[-1][2].append((parts[4], parts[3], parts[2]))
                else:
                    elements[-1][2].append((parts[2], parts[1], None))
    except (IndexError, ValueError) as err:
        raise ShapeReadError(f"{path}: malformed PLY header ({err})", SkipReason.MALFORMED) from err
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise ShapeReadError(f"{path}: unknown PLY format {fmt!r}", SkipReason.UNSUPPORTED_FORMAT)
    vertex_props: dict[str, np.ndarray] = {}
    faces = None
    try:
        if fmt == "ascii":
            lines = data[body_start:].decode("ascii", errors="replace").split("\n")
            pos = 0
            for name, count, props in elements:
                rows = [lines[pos + i].split() for i in range(count)]
                pos += count
                if name == "vertex":
                    table = np.asarray([r[: len(props)] for r in rows], dtype=np.float64)
                    table = table.reshape(count, len(props))
                    vertex_props = {p[0]: table[:, j] for j, p in enumerate(props)}
                elif name == "face":
                    faces = _triangulate([[int(v) for v in r[1 : 1 + int(r[0])]] for r in rows])
        else:
            order = "<" if fmt == "binary_little_endian" else ">"
            buf = io.BytesIO(data[body_start:])
            for name, count, props in elements:
                if all(p[2] is None for p in props):
                    dtype = np.dtype([(p[0], order + _PLY_TYPES[p[1]]) for p in props])
                    table = np.frombuffer(
                        buf.read(dtype.itemsize * count), dtype=dtype, count=count
                    )
                    if name == "vertex":
                        vertex_props = {p[0]: table[p[0]].astype(np.float64) for p in props}
                else:  # list properties (faces): read row by row
                    polygons = []
                    for _ in range(count):
                        poly: list[int] = []
                        for pname, ptype, ctype in props:
                            if ctype is None:
                                buf.read(np.dtype(_PLY_TYPES[ptype]).itemsize)
                                continue
                            n = int(
                                np.frombuffer(
                                    buf.read(np.dtype(_PLY_TYPES[ctype]).itemsize),
                                    order + _PLY_TYPES[ctype],
                                )[0]
                            )
                            vals = np.frombuffer(
                                buf.read(np.dtype(_PLY_TYPES[ptype]).itemsize * n),
                                order + _PLY_TYPES[ptype],
                            )
                            if pname in ("vertex_indices", "vertex_index"):
                                poly = [int(v) for v in vals]
                        polygons.append(poly)
                    if name == "face":
                        faces = _triangulate(polygons)
    except (IndexError, ValueError, KeyError) as err:
        raise ShapeReadError(f"{path}: malformed PLY ({err})", SkipReason.MALFORMED) from err
    if not all(k in vertex_props for k in "xyz"):
        raise ShapeReadError(
            f"{path}: PLY vertices lack x/y/z properties", SkipReason.MISSING_FIELDS
        )
    return vertex_props, faces


def read_mesh(path: str | os.PathLike) -> Mesh:
    """Read a .off, .obj or .ply mesh (the PLY must have faces)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".off":
        return read_off(path)
    if suffix == ".obj":
        return parse_obj(_read_text(path), str(path))
    if suffix == ".ply":
        props, faces = read_ply(path)
        if faces is None:
            raise ShapeReadError(
                f"{path}: PLY has no faces (a point file, not a mesh)", SkipReason.NO_FACES
            )
        vertices = np.stack([props["x"], props["y"], props["z"]], axis=1)
        return Mesh(vertices, faces)
    raise ShapeReadError(f"{path}: unknown mesh format {suffix!r}", SkipReason.UNSUPPORTED_FORMAT)


def sample_mesh(
    mesh: Mesh, num_points: int, rng: np.random.Generator, source: str = "mesh"
) -> tuple[Shape, np.ndarray]:
    """Sample ``num_points`` points area-weighted on the mesh's faces, with face normals.

    Returns the shape (``labels`` = the face's group index) and the sampled face indices.
    Raises :class:`ShapeReadError` for meshes without area (no faces, collinear faces,
    NaN vertices).

    >>> m = Mesh(np.array([[0., 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))
    >>> s, _ = sample_mesh(m, 5, np.random.default_rng(0))
    >>> s.points.shape, np.allclose(np.abs(s.normals[:, 2]), 1)
    ((5, 3), True)
    """
    v, f = mesh.vertices, mesh.faces
    if v.shape[0] == 0:
        raise ShapeReadError(f"{source}: mesh has no vertices", SkipReason.EMPTY)
    if f.shape[0] == 0:
        raise ShapeReadError(f"{source}: mesh has no faces", SkipReason.NO_FACES)
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise ShapeReadError(
            f"{source}: face indices out of range [0, {v.shape[0]})", SkipReason.MALFORMED
        )
    if not np.isfinite(v).all():
        raise ShapeReadError(f"{source}: mesh has NaN/Inf vertices", SkipReason.NON_FINITE)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    double_area = np.linalg.norm(cross, axis=1)
    total = double_area.sum()
    if not total > 0:
        raise ShapeReadError(
            f"{source}: degenerate mesh (zero surface area)", SkipReason.DEGENERATE
        )
    face = rng.choice(f.shape[0], size=num_points, p=double_area / total)
    r1 = np.sqrt(rng.random(num_points))[:, None]
    r2 = rng.random(num_points)[:, None]
    points = (1 - r1) * a[face] + r1 * (1 - r2) * b[face] + r1 * r2 * c[face]
    normals = cross[face] / double_area[face, None]
    shape = Shape(points.astype(np.float32), normals.astype(np.float32), mesh.face_groups[face])
    return check_shape(shape, source), face


# ------------------------------------------------------------------------------ point files


def _normalize_normals(normals: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(norm, 1e-12)


def read_point_file(path: str | os.PathLike) -> Shape:
    """Read points with normals from .npz (keys ``points``, ``normals``, optional ``labels``),
    .ply without faces (x y z nx ny nz), or .xyz/.txt/.pts text (x y z nx ny nz [label])."""
    path = Path(path)
    suffix = path.suffix.lower()
    labels = None
    if suffix == ".npz":
        data = _read_bytes(path)
        if not data.startswith(b"PK"):  # every .npz is a zip archive
            raise ShapeReadError(
                f"{path}: not a NumPy .npz archive (starts with {data[:16]!r})",
                SkipReason.WRONG_FORMAT,
            )
        try:
            with np.load(io.BytesIO(data)) as z:
                if "points" not in z or "normals" not in z:
                    raise ShapeReadError(
                        f"{path}: .npz needs arrays 'points' and 'normals', has {list(z.keys())}",
                        SkipReason.MISSING_FIELDS,
                    )
                points, normals = z["points"], z["normals"]
                labels = z["labels"].astype(np.int64) if "labels" in z else None
        except ShapeReadError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ShapeReadError(f"{path}: malformed .npz ({err})", SkipReason.MALFORMED) from err
    elif suffix == ".ply":
        props, _ = read_ply(path)
        if not all(k in props for k in ("nx", "ny", "nz")):
            raise ShapeReadError(
                f"{path}: PLY point file needs nx/ny/nz properties", SkipReason.MISSING_FIELDS
            )
        points = np.stack([props["x"], props["y"], props["z"]], 1)
        normals = np.stack([props["nx"], props["ny"], props["nz"]], 1)
        if "label" in props:
            labels = props["label"].astype(np.int64)
    elif suffix in (".xyz", ".txt", ".pts"):
        text = _read_text(path)
        if not text.strip():
            raise ShapeReadError(f"{path}: empty shape (0 points)", SkipReason.EMPTY)
        try:
            table = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
        except ValueError as err:
            raise ShapeReadError(
                f"{path}: malformed text point file ({err})", SkipReason.MALFORMED
            ) from err
        if table.size == 0:
            raise ShapeReadError(f"{path}: empty shape (0 points)", SkipReason.EMPTY)
        if table.shape[1] < 6:
            raise ShapeReadError(
                f"{path}: expected columns x y z nx ny nz [label], got {table.shape[1]}",
                SkipReason.MISSING_FIELDS,
            )
        points, normals = table[:, :3], table[:, 3:6]
        if table.shape[1] >= 7:
            labels = table[:, 6].astype(np.int64)
    else:
        raise ShapeReadError(
            f"{path}: unknown point format {suffix!r}", SkipReason.UNSUPPORTED_FORMAT
        )
    shape = Shape(
        np.asarray(points, np.float32).reshape(-1, 3),
        _normalize_normals(np.asarray(normals, np.float32).reshape(-1, 3)),
        labels,
    )
    return check_shape(shape, str(path))


def read_shapenet_part_txt(path: str | os.PathLike) -> Shape:
    """ShapeNet Part (the normal-resampled release): one point per line, ``x y z nx ny nz label``.

    Labels are the dataset's global part ids (0..49).
    """
    shape = read_point_file(path)
    if shape.labels is None:
        raise ShapeReadError(
            f"{path}: ShapeNet Part txt needs 7 columns (x y z nx ny nz label)",
            SkipReason.MISSING_FIELDS,
        )
    return shape


def _resample(shape: Shape, num_points: int, rng: np.random.Generator) -> Shape:
    n = shape.points.shape[0]
    idx = rng.choice(n, size=num_points, replace=n < num_points)
    labels = None if shape.labels is None else shape.labels[idx]
    return Shape(shape.points[idx], shape.normals[idx], labels)


def load_shape(path: str | os.PathLike, num_points: int, rng: np.random.Generator) -> Shape:
    """Read any supported file and return exactly ``num_points`` points.

    Meshes are sampled area-weighted (labels: none); point files are resampled (without
    replacement when they have enough points).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in MESH_SUFFIXES:
        shape, _ = sample_mesh(read_mesh(path), num_points, rng, str(path))
        shape.labels = None  # face groups are not part labels for generic meshes
        return shape
    if suffix == ".ply":
        props, faces = read_ply(path)
        if faces is not None:
            vertices = np.stack([props["x"], props["y"], props["z"]], 1)
            shape, _ = sample_mesh(Mesh(vertices, faces), num_points, rng, str(path))
            shape.labels = None
            return shape
    return _resample(read_point_file(path), num_points, rng)
