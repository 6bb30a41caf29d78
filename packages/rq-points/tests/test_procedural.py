import numpy as np
from rq_points.data.procedural import CLASSES, PART_OFFSETS, PARTS, generate_shape, generate_shapes


def test_deterministic_and_labelled_within_class_parts():
    a = generate_shapes(3, 500, seed=5)
    b = generate_shapes(3, 500, seed=5)
    assert len(a) == 3 * len(CLASSES)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.shape.points, y.shape.points)
        lo, hi = PART_OFFSETS[x.class_id], PART_OFFSETS[x.class_id] + len(PARTS[x.class_id])
        assert x.shape.labels.min() >= lo and x.shape.labels.max() < hi
        assert np.allclose(np.linalg.norm(x.shape.normals, axis=1), 1, atol=1e-4)
    assert not np.array_equal(a[0].shape.points, a[1].shape.points)  # random proportions


def test_every_mandatory_part_gets_points():
    for c in range(len(CLASSES)):
        labels = generate_shape(c, 4000, np.random.default_rng(1)).labels
        assert len(np.unique(labels)) >= 2, CLASSES[c]
