import itertools

import numpy as np
import pytest
from rq_core.probe_metrics import (
    accuracy,
    average_precision,
    macro_auroc,
    mean_average_precision,
    roc_auc,
)


def auroc_by_pairs(scores, targets):
    """P(score of a positive > score of a negative), ties counting one half."""
    positives, negatives = scores[targets == 1], scores[targets == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


def ap_by_thresholds(scores, targets):
    """Sum over distinct thresholds t (descending) of (recall gain) * precision at t."""
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        predicted = scores >= threshold
        tp = (predicted & (targets == 1)).sum()
        recall = tp / targets.sum()
        total += (recall - previous_recall) * tp / predicted.sum()
        previous_recall = recall
    return total


@pytest.mark.parametrize("seed", range(20))
def test_auroc_and_ap_match_their_definitions_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 30))
    scores = rng.integers(0, 4, n).astype(float) if seed % 2 else rng.random(n)
    targets = rng.integers(0, 2, n)
    targets[:2] = [0, 1]
    assert roc_auc(scores, targets) == pytest.approx(auroc_by_pairs(scores, targets), abs=1e-12)
    assert average_precision(scores, targets) == pytest.approx(
        ap_by_thresholds(scores, targets), abs=1e-12
    )


def test_perfect_and_reversed_rankings():
    targets = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), targets) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), targets) == 0.0
    assert average_precision(np.array([0.1, 0.2, 0.8, 0.9]), targets) == 1.0


def test_multilabel_means_skip_classes_without_positives():
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5], [0.2, 0.3, 0.5]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert mean_average_precision(scores, targets) == 1.0
    assert macro_auroc(scores, targets) == 1.0
    assert np.isnan(average_precision(scores[:, 2], targets[:, 2]))
    with pytest.raises(ValueError, match="no class"):
        macro_auroc(scores, np.zeros_like(targets))


def test_accuracy():
    assert accuracy(np.eye(3), np.array([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int))
