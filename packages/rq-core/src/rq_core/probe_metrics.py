"""Classification metrics of the linear probe in numpy: accuracy, mAP and macro AUROC.

Implemented here (not scikit-learn) so that ``rq-core`` keeps torch + numpy as its only
dependencies; the definitions match ``sklearn.metrics.average_precision_score`` and
``roc_auc_score`` per class (ties handled the same way), averaged over classes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "average_precision", "mean_average_precision", "macro_auroc", "roc_auc"]


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax of ``scores`` (N, C) equals ``labels`` (N,) int.

    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the precision-recall step curve of one class: ``sum_n (R_n - R_{n-1}) P_n``
    over distinct thresholds (scikit-learn's definition). ``nan`` without positives.

    >>> average_precision(np.array([0.9, 0.8, 0.1]), np.array([1, 0, 1]))
    0.8333333333333333
    """
    targets = np.asarray(targets).astype(bool)
    positives = targets.sum()
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores = np.asarray(scores, dtype=np.float64)[order]
    sorted_targets = targets[order]
    true_positives = np.cumsum(sorted_targets)
    # Only the last position of each run of tied scores is a threshold.
    threshold_ends = np.r_[np.diff(sorted_scores) != 0, True]
    tp = true_positives[threshold_ends]
    predicted = (np.arange(1, len(sorted_scores) + 1))[threshold_ends]
    precision = tp / predicted
    recall = tp / positives
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the ROC curve of one class (Mann-Whitney U with average ranks for ties);
    ``nan`` when the class has no positives or no negatives.

    >>> roc_auc(np.array([0.9, 0.8, 0.1]), np.array([1, 0, 1]))
    0.5
    """
    targets = np.asarray(targets).astype(bool)
    positives, negatives = int(targets.sum()), int((~targets).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average rank (1-based) over each run of equal scores.
    run_starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores) != 0) + 1]
    run_ends = np.r_[run_starts[1:], len(scores)]
    for start, end in zip(run_starts, run_ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    rank_sum = ranks[targets].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def _mean_over_classes(metric, scores: np.ndarray, targets: np.ndarray) -> float:
    values = np.array([metric(scores[:, c], targets[:, c]) for c in range(targets.shape[1])])
    valid = ~np.isnan(values)
    if not valid.any():
        raise ValueError("no class has both positive and negative examples in this split")
    return float(values[valid].mean())


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of :func:`average_precision`; classes without positives are skipped.

    Shapes: ``scores`` (N, C) float, ``targets`` (N, C) in {0, 1}.

    >>> mean_average_precision(np.array([[0.9, 0.1], [0.2, 0.8]]), np.eye(2))
    1.0
    """
    return _mean_over_classes(average_precision, scores, targets)


def macro_auroc(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of :func:`roc_auc`; classes lacking positives or negatives skipped.

    >>> macro_auroc(np.array([[0.9, 0.1], [0.2, 0.8]]), np.eye(2))
    1.0
    """
    return _mean_over_classes(roc_auc, scores, targets)
