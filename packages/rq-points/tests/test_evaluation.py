import numpy as np
from rq_points.evaluation import PointFeatures, class_ratio_subset, part_iou, segmentation_probe


def test_class_ratio_subset_takes_ceil_per_class():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 101)
    sub = class_ratio_subset(labels, 0.05, seed=1)
    assert [int((labels[sub] == c).sum()) for c in range(3)] == [1, 1, 6]
    assert len(np.unique(sub)) == len(sub)


def test_part_iou_by_hand():
    # shape 0 (class 0, parts 0-1): part 0 IoU 1/3, part 1 IoU 1/3; shape 1 (class 1, parts 2-4):
    # all correct on parts 2 and 3, part 4 absent in both -> 1.
    pred = np.array([0, 0, 1, 1, 2, 3])
    gt = np.array([0, 1, 1, 0, 2, 3])
    r = part_iou(pred, gt, np.array([0, 0, 0, 0, 1, 1]), np.array([0, 1]), [(0, 2), (2, 5)])
    assert np.isclose(r["instance_miou"], 100 * (1 / 3 + 1.0) / 2)
    assert np.isclose(r["class_miou"], r["instance_miou"])


def test_segmentation_probe_learns_separable_parts():
    rng = np.random.default_rng(0)
    def make(n_shapes):
        labels = rng.integers(0, 2, size=(n_shapes, 50))
        feats = rng.normal(size=(n_shapes, 50, 4)) + 3 * labels[..., None]
        return PointFeatures(feats.reshape(-1, 4).astype(np.float32), labels.reshape(-1),
                             np.repeat(np.arange(n_shapes), 50), np.zeros(n_shapes, int))
    r = segmentation_probe(make(20), make(5), [(0, 2)], hidden=8, epochs=10, batch_size=64, seeds=(0,))
    assert r["instance_miou_mean"] > 90
