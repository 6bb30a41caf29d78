"""rq_core.uncertainty's mIoU statistics aggregate per-shape IoUs as part_iou does (a test of
the rq-core statistic against this package's mIoU; rq-points itself is unchanged)."""

import numpy as np
import pytest
from rq_core.uncertainty import bootstrap_estimate, miou_statistic
from rq_points.evaluate import part_iou


def test_miou_statistics_equal_part_iou_on_the_full_set():
    rng = np.random.default_rng(0)
    part_ranges = [(0, 2), (2, 5), (5, 9)]
    class_ids = rng.integers(0, 3, 25)
    shape = np.repeat(np.arange(25), 40)
    first = np.array([part_ranges[c][0] for c in class_ids])[shape]
    width = np.array([part_ranges[c][1] - part_ranges[c][0] for c in class_ids])[shape]
    labels = first + rng.integers(0, 1_000, len(shape)) % width
    wrong = first + rng.integers(0, 4, len(shape)) % width
    pred = np.where(rng.random(len(shape)) < 0.7, labels, wrong)
    # Each shape's IoU is part_iou of that shape alone.
    per_shape = np.array(
        [
            part_iou(
                pred[shape == s], labels[shape == s], np.zeros(40, int), class_ids[[s]], part_ranges
            )["instance_miou"]
            / 100
            for s in range(25)
        ]
    )
    reference = part_iou(pred, labels, shape, class_ids, part_ranges)
    for average in ("class", "instance"):
        statistic = miou_statistic(per_shape, class_ids, average=average)
        assert 100 * statistic.value() == pytest.approx(reference[f"{average}_miou"], abs=1e-9)
        estimate = bootstrap_estimate(statistic, resamples=200).scaled(100)
        assert estimate.low < reference[f"{average}_miou"] < estimate.high
