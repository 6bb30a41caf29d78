"""A procedural, part-labelled shape family (numpy only): the offline default data.

Six classes in the spirit of ShapeNet Part -- chair, table, lamp, mug, airplane, guitar --
each built from a few primitives (boxes, cylinders, ellipsoids, frusta, a torus arc) with
random proportions and random variants (arms or not, round or square table tops, cone or
dome lamp shades, two or four engines, ...). Every point carries its part's label, so one
set serves classification and part segmentation. The y axis is up, as in ShapeNet.

Part labels are global, ShapeNet-Part style: class ``c`` owns the ids
``PART_OFFSETS[c] .. PART_OFFSETS[c] + len(PARTS[c]) - 1``.

>>> shapes = generate_shapes(num_per_class=1, num_points=256, seed=0)
>>> len(shapes), shapes[0].shape.points.shape
(6, (256, 3))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rq_points.data.readers import Shape, check_shape

__all__ = [
    "CLASSES",
    "PARTS",
    "PART_OFFSETS",
    "LabelledShape",
    "generate_shape",
    "generate_shapes",
]

Sampler = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass
class _Primitive:
    area: float
    sample: Sampler
    part: int


@dataclass
class LabelledShape:
    """One generated shape: its class id and a :class:`Shape` with global part labels."""

    class_id: int
    shape: Shape


# ------------------------------------------------------------------------------ primitives


def _box(center, size, part) -> _Primitive:
    c, h = np.asarray(center, float), np.asarray(size, float) / 2
    face_areas = (
        np.array([h[1] * h[2], h[1] * h[2], h[0] * h[2], h[0] * h[2], h[0] * h[1], h[0] * h[1]]) * 4
    )

    def sample(n, rng):
        face = rng.choice(6, size=n, p=face_areas / face_areas.sum())
        axis, sign = face // 2, np.where(face % 2 == 0, -1.0, 1.0)
        uv = rng.uniform(-1, 1, size=(n, 3))
        uv[np.arange(n), axis] = sign
        normals = np.zeros((n, 3))
        normals[np.arange(n), axis] = sign
        return c + uv * h, normals

    return _Primitive(float(face_areas.sum()), sample, part)


def _axis_frame(axis: int) -> tuple[int, int, int]:
    return axis, (axis + 1) % 3, (axis + 2) % 3


def _cylinder(center, radius, height, part, axis=1, bottom=True, top=True) -> _Primitive:
    c = np.asarray(center, float)
    a, u, v = _axis_frame(axis)
    side, cap = 2 * math.pi * radius * height, math.pi * radius**2
    areas = np.array([side, cap * bottom, cap * top])

    def sample(n, rng):
        which = rng.choice(3, size=n, p=areas / areas.sum())
        pts, nrm = np.zeros((n, 3)), np.zeros((n, 3))
        theta = rng.uniform(0, 2 * math.pi, n)
        r = np.where(which == 0, radius, radius * np.sqrt(rng.random(n)))
        pts[:, u], pts[:, v] = r * np.cos(theta), r * np.sin(theta)
        pts[:, a] = np.where(
            which == 0,
            rng.uniform(-height / 2, height / 2, n),
            np.where(which == 1, -height / 2, height / 2),
        )
        nrm[:, u] = np.where(which == 0, np.cos(theta), 0)
        nrm[:, v] = np.where(which == 0, np.sin(theta), 0)
        nrm[:, a] = np.where(which == 0, 0, np.where(which == 1, -1.0, 1.0))
        return c + pts, nrm

    return _Primitive(float(areas.sum()), sample, part)


def _ellipsoid(center, radii, part) -> _Primitive:
    c, r = np.asarray(center, float), np.asarray(radii, float)
    p = 1.6075  # Knud Thomsen's approximation of an ellipsoid's area (error < 1.1%)
    ab, ac, bc = (r[0] * r[1]) ** p, (r[0] * r[2]) ** p, (r[1] * r[2]) ** p
    area = 4 * math.pi * ((ab + ac + bc) / 3) ** (1 / p)

    def sample(n, rng):
        # Draw from the sphere, then keep points with probability proportional to the
        # local area stretch so the density on the ellipsoid is uniform (rejection).
        out_p, out_n, have = [], [], 0
        while have < n:
            d = rng.normal(size=(2 * n, 3))
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            stretch = np.linalg.norm(d / r * np.prod(r), axis=1)
            keep = rng.random(2 * n) < stretch / stretch.max()
            out_p.append(d[keep] * r)
            out_n.append(d[keep] / r)
            have += int(keep.sum())
        pts, nrm = np.concatenate(out_p)[:n], np.concatenate(out_n)[:n]
        return c + pts, nrm / np.linalg.norm(nrm, axis=1, keepdims=True)

    return _Primitive(float(area), sample, part)


def _frustum(center, r_bottom, r_top, height, part) -> _Primitive:
    """An open cone frustum about the y axis, ``center`` at mid-height (lamp shades)."""
    c = np.asarray(center, float)
    slant = math.hypot(height, r_bottom - r_top)
    area = math.pi * (r_bottom + r_top) * slant

    def sample(n, rng):
        # Radius varies linearly with height; area density is proportional to the radius,
        # so t is drawn by inverting the CDF of a linear density.
        u = rng.random(n)
        if abs(r_top - r_bottom) < 1e-9:
            t = u
        else:
            t = (np.sqrt(r_bottom**2 + u * (r_top**2 - r_bottom**2)) - r_bottom) / (
                r_top - r_bottom
            )
        r = r_bottom + t * (r_top - r_bottom)
        theta = rng.uniform(0, 2 * math.pi, n)
        pts = np.stack([r * np.cos(theta), (t - 0.5) * height, r * np.sin(theta)], 1)
        slope = (r_bottom - r_top) / height
        nrm = np.stack([np.cos(theta), np.full(n, slope), np.sin(theta)], 1)
        return c + pts, nrm / np.linalg.norm(nrm, axis=1, keepdims=True)

    return _Primitive(float(area), sample, part)


def _torus_arc(center, major, minor, angle0, angle1, part) -> _Primitive:
    """A torus arc in the x-y plane around ``center`` (a mug handle)."""
    c = np.asarray(center, float)
    area = 4 * math.pi**2 * major * minor * (angle1 - angle0) / (2 * math.pi)

    def sample(n, rng):
        out_p, out_n, have = [], [], 0
        while have < n:
            theta = rng.uniform(angle0, angle1, 2 * n)
            phi = rng.uniform(0, 2 * math.pi, 2 * n)
            keep = rng.random(2 * n) < (major + minor * np.cos(phi)) / (major + minor)
            theta, phi = theta[keep], phi[keep]
            ring = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], 1)
            nrm = ring * np.cos(phi)[:, None] + np.array([0, 0, 1.0]) * np.sin(phi)[:, None]
            out_p.append(ring * major + nrm * minor)
            out_n.append(nrm)
            have += int(keep.sum())
        return c + np.concatenate(out_p)[:n], np.concatenate(out_n)[:n]

    return _Primitive(float(area), sample, part)


# ------------------------------------------------------------------------------ classes


def _chair(rng: np.random.Generator) -> list[_Primitive]:
    w, d = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
    seat_h, seat_t = rng.uniform(0.38, 0.55), rng.uniform(0.04, 0.09)
    back_h, back_t = rng.uniform(0.3, 0.7), rng.uniform(0.03, 0.07)
    leg = rng.uniform(0.02, 0.04)
    prims = [
        _box([0, seat_h + back_h / 2, -d / 2 + back_t / 2], [w, back_h, back_t], 0),
        _box([0, seat_h, 0], [w, seat_t, d], 1),
    ]
    for sx in (-1, 1):
        for sz in (-1, 1):
            prims.append(
                _box(
                    [sx * (w / 2 - leg), seat_h / 2, sz * (d / 2 - leg)],
                    [2 * leg, seat_h, 2 * leg],
                    2,
                )
            )
    if rng.random() < 0.5:
        arm_h = rng.uniform(0.15, 0.25)
        for sx in (-1, 1):
            prims.append(_box([sx * (w / 2 + 0.03), seat_h + arm_h, 0], [0.05, 0.04, d * 0.9], 3))
            prims.append(
                _box([sx * (w / 2 + 0.03), seat_h + arm_h / 2, d * 0.35], [0.04, arm_h, 0.04], 3)
            )
    return prims


def _table(rng: np.random.Generator) -> list[_Primitive]:
    height, top_t = rng.uniform(0.55, 0.8), rng.uniform(0.03, 0.08)
    prims = []
    if rng.random() < 0.5:
        w, d = rng.uniform(0.8, 1.6), rng.uniform(0.5, 1.0)
        prims.append(_box([0, height, 0], [w, top_t, d], 0))
        leg = rng.uniform(0.025, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                prims.append(
                    _box(
                        [sx * (w / 2 - 2 * leg), height / 2, sz * (d / 2 - 2 * leg)],
                        [2 * leg, height, 2 * leg],
                        1,
                    )
                )
    else:
        r = rng.uniform(0.35, 0.7)
        prims.append(_cylinder([0, height, 0], r, top_t, 0))
        prims.append(_cylinder([0, height / 2, 0], rng.uniform(0.03, 0.07), height, 1, top=False))
        prims.append(_cylinder([0, 0.02, 0], r * rng.uniform(0.4, 0.7), 0.04, 1))
    return prims


def _lamp(rng: np.random.Generator) -> list[_Primitive]:
    base_r, base_h = rng.uniform(0.1, 0.22), rng.uniform(0.02, 0.06)
    pole_h = rng.uniform(0.4, 1.0)
    prims = [
        _cylinder([0, base_h / 2, 0], base_r, base_h, 0),
        _cylinder(
            [0, base_h + pole_h / 2, 0],
            rng.uniform(0.01, 0.025),
            pole_h,
            1,
            bottom=False,
            top=False,
        ),
    ]
    top = base_h + pole_h
    if rng.random() < 0.6:
        shade_h = rng.uniform(0.15, 0.3)
        prims.append(
            _frustum([0, top, 0], rng.uniform(0.15, 0.3), rng.uniform(0.05, 0.14), shade_h, 2)
        )
    else:
        r = rng.uniform(0.12, 0.25)
        prims.append(_ellipsoid([0, top + r * 0.3, 0], [r, r * rng.uniform(0.5, 0.9), r], 2))
    return prims


def _mug(rng: np.random.Generator) -> list[_Primitive]:
    r, h = rng.uniform(0.3, 0.45), rng.uniform(0.6, 1.0)
    handle_r = rng.uniform(0.15, 0.3) * h
    return [
        _cylinder([0, h / 2, 0], r, h, 0, top=False),
        _torus_arc([r, h / 2, 0], handle_r, rng.uniform(0.03, 0.06), -math.pi / 2, math.pi / 2, 1),
    ]


def _airplane(rng: np.random.Generator) -> list[_Primitive]:
    length, radius = rng.uniform(1.5, 2.5), rng.uniform(0.09, 0.18)
    span, chord = rng.uniform(1.2, 2.2), rng.uniform(0.2, 0.4)
    wing_x = rng.uniform(-0.15, 0.15) * length
    tail_x = -0.42 * length
    prims = [
        _ellipsoid([0, 0, 0], [length / 2, radius, radius], 0),
        _box([wing_x, -radius * 0.3, 0], [chord, 0.03, span], 1),
        _box([tail_x, radius + 0.12, 0], [chord * 0.6, 0.25, 0.03], 2),
        _box([tail_x, radius * 0.3, 0], [chord * 0.5, 0.025, span * 0.35], 2),
    ]
    engines = [0.25, 0.45] if rng.random() < 0.5 else [0.3]
    for frac in engines:
        for sz in (-1, 1):
            prims.append(
                _cylinder(
                    [wing_x + 0.05, -radius * 0.3 - 0.08, sz * frac * span],
                    rng.uniform(0.04, 0.07),
                    chord * 0.9,
                    3,
                    axis=0,
                )
            )
    return prims


def _guitar(rng: np.random.Generator) -> list[_Primitive]:
    lower, upper = rng.uniform(0.2, 0.3), rng.uniform(0.14, 0.22)
    depth = rng.uniform(0.05, 0.09)
    neck_len = rng.uniform(0.5, 0.8)
    top = lower * 1.1 + upper * 1.2
    return [
        _ellipsoid([0, 0, 0], [lower, lower * 1.1, depth], 0),
        _ellipsoid([0, lower * 1.1, 0], [upper, upper * 1.2, depth], 0),
        _box([0, top + neck_len / 2, 0], [0.06, neck_len, 0.04], 1),
        _box([0, top + neck_len + 0.1, 0], [rng.uniform(0.08, 0.12), 0.2, 0.04], 2),
    ]


CLASSES: tuple[str, ...] = ("chair", "table", "lamp", "mug", "airplane", "guitar")
PARTS: tuple[tuple[str, ...], ...] = (
    ("back", "seat", "leg", "arm"),
    ("top", "leg"),
    ("base", "pole", "shade"),
    ("body", "handle"),
    ("body", "wing", "tail", "engine"),
    ("body", "neck", "head"),
)
PART_OFFSETS: tuple[int, ...] = tuple(int(x) for x in np.cumsum([0] + [len(p) for p in PARTS])[:-1])
_BUILDERS = (_chair, _table, _lamp, _mug, _airplane, _guitar)


def generate_shape(class_id: int, num_points: int, rng: np.random.Generator) -> Shape:
    """One random shape of class ``class_id`` with ``num_points`` area-weighted surface points."""
    if not 0 <= class_id < len(CLASSES):
        raise ValueError(f"class_id must be in [0, {len(CLASSES)}), got {class_id}")
    prims = _BUILDERS[class_id](rng)
    areas = np.array([p.area for p in prims])
    counts = rng.multinomial(num_points, areas / areas.sum())
    pts, nrm, lab = [], [], []
    for prim, n in zip(prims, counts):
        if n == 0:
            continue
        p, q = prim.sample(int(n), rng)
        pts.append(p)
        nrm.append(q)
        lab.append(np.full(int(n), PART_OFFSETS[class_id] + prim.part, np.int64))
    shape = Shape(
        np.concatenate(pts).astype(np.float32),
        np.concatenate(nrm).astype(np.float32),
        np.concatenate(lab),
    )
    return check_shape(shape, f"procedural {CLASSES[class_id]}")


def generate_shapes(num_per_class: int, num_points: int, seed: int = 0) -> list[LabelledShape]:
    """``num_per_class`` shapes of every class, deterministic in ``seed`` (class-major order)."""
    out = []
    for class_id in range(len(CLASSES)):
        for i in range(num_per_class):
            rng = np.random.default_rng([seed, class_id, i])
            out.append(LabelledShape(class_id, generate_shape(class_id, num_points, rng)))
    return out
