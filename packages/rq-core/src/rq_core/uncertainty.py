"""How sure a probe result is: percentile-bootstrap confidence intervals over test items and
probe seeds, and the paired difference of two methods on the same test items.

A :class:`Statistic` is a metric of per-item, per-seed outputs (correctness, scores, part
IoUs) that can be evaluated on many bootstrap resamples at once. A resample is given by
multiplicities, not indices: ``item_counts[r, n]`` is how often test item ``n`` was drawn in
resample ``r`` and ``seed_counts[r, s]`` how often probe seed ``s`` was. Every metric here is
a weighted form of its full-set definition (a drawn item counts as often as it was drawn,
exactly as if the resampled set were written out with its repeats), so all resamples are
evaluated with a few matrix products, or one pass over scores sorted once per seed and
class, and no Python loop over resamples.

- :func:`bootstrap_estimate` -> :class:`Estimate`: the statistic on the full test set and
  its percentile interval; items and (where there are several) seeds are resampled jointly.
- :func:`paired_difference` -> :class:`Comparison`: ``a - b`` on the same resampled items
  (and seeds), its interval, and a verdict: ``better`` (the whole interval above 0),
  ``worse`` (below 0) or ``no clear difference``.
- statistic builders: :func:`accuracy_statistic`, :func:`mean_statistic`,
  :func:`miou_statistic` (class or instance mIoU from per-item IoUs), :func:`map_statistic`
  and :func:`auroc_statistic` (multi-label, macro over classes as
  :mod:`rq_core.probe_metrics`), and :func:`mean_of` for an average over test sets
  (tasks). ``rq_core.linear_probe(..., return_predictions=True)``
  builds them from its per-item predictions (``ProbePredictions.statistic``).

>>> rng = np.random.default_rng(0)
>>> correct = rng.random((3, 400)) < 0.9  # 3 probe seeds x 400 test items, ~90 % right
>>> rq = accuracy_statistic(correct)
>>> print(bootstrap_estimate(rq).scaled(100))
90.7 [86.9, 93.8]
>>> random_init = accuracy_statistic(correct & (rng.random(400) < 0.95))  # ~5 % more wrong
>>> print(paired_difference(rq, random_init).scaled(100))
+6.8 [+4.5, +9.2] better
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal, TypeVar

import numpy as np

from rq_core.runs import ResultsTable

__all__ = [
    "BETTER",
    "Comparison",
    "Estimate",
    "NO_CLEAR_DIFFERENCE",
    "Statistic",
    "WORSE",
    "accuracy_statistic",
    "auroc_statistic",
    "bootstrap_estimate",
    "compare_methods",
    "map_statistic",
    "mean_of",
    "mean_statistic",
    "miou_statistic",
    "paired_difference",
]

BETTER, WORSE, NO_CLEAR_DIFFERENCE = "better", "worse", "no clear difference"
# 1000 resamples put each end of a 95 % interval on ~25 resamples: stable to ~0.1-0.2 points
# for the demo's test sets, and under a second per table cell (benchmarks/bootstrap.py).
DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
# Resamples are drawn and evaluated in chunks of at most this many (resample x item) cells,
# so memory stays ~tens of MB for test sets of tens of thousands of items.
_CHUNK_CELLS = 2_000_000

Evaluate = Callable[[np.ndarray, np.ndarray], np.ndarray]
T = TypeVar("T")


# ------------------------------------------------------------------------------- results


def _format_number(value: float, spec: str) -> str:
    return format(float(value), spec)


@dataclass(frozen=True)
class Estimate:
    """A statistic on the full test set (``value``) and its ``level`` percentile-bootstrap
    interval ``[low, high]`` from ``resamples`` resamples.

    ``str()`` gives a table cell, ``value [low, high]`` with one decimal; ``format(e, ".2f")``
    picks another number format. Values are in the statistic's unit (fractions for accuracy,
    mAP and AUROC): ``scaled(100)`` turns them into percent.

    >>> e = Estimate(0.9304, 0.912, 0.945, 0.95, 1000).scaled(100)
    >>> str(e), f"{e:.2f}"
    ('93.0 [91.2, 94.5]', '93.04 [91.20, 94.50]')
    >>> e.to_json()
    {'value': 93.04, 'low': 91.2, 'high': 94.5, 'level': 0.95, 'resamples': 1000}
    """

    value: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL
    resamples: int = 0

    def scaled(self, factor: float) -> Estimate:
        """The same estimate with value and bounds multiplied by ``factor`` (> 0)."""
        return _scaled(self, factor, ("value", "low", "high"))

    def __format__(self, spec: str) -> str:
        spec = spec or ".1f"
        low, high = _format_number(self.low, spec), _format_number(self.high, spec)
        return f"{_format_number(self.value, spec)} [{low}, {high}]"

    def __str__(self) -> str:
        return format(self, "")

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def _scaled(interval: T, factor: float, names: tuple[str, ...]) -> T:
    """``interval`` with the fields ``names`` multiplied by ``factor``, rounded to 12
    significant digits to drop the binary noise of the product (0.9304 * 100 is
    93.03999999999999), so that JSON shows what the table shows."""
    if not factor > 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    scaled = {name: float(f"{getattr(interval, name) * factor:.12g}") for name in names}
    return replace(interval, **scaled)


@dataclass(frozen=True)
class Comparison:
    """``a - b`` of one statistic on the same test items (``difference``), its ``level``
    percentile-bootstrap interval and a verdict:

    - ``better``: the whole interval is above 0 (``a`` is higher: better for accuracy, mAP,
      AUROC and mIoU);
    - ``worse``: the whole interval is below 0;
    - ``no clear difference``: the interval contains 0.

    ``str()`` gives a table cell with signed numbers, e.g. ``+1.9 [+0.4, +3.3] better``.

    >>> c = Comparison(0.019, 0.004, 0.033, 0.95, 1000).scaled(100)
    >>> str(c), c.verdict
    ('+1.9 [+0.4, +3.3] better', 'better')
    >>> Comparison(-0.5, -1.5, 0.2).verdict
    'no clear difference'
    """

    difference: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL
    resamples: int = 0
    # False: the cell shows the numbers only (a table with its own verdict column).
    show_verdict: bool = True

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return BETTER
        if self.high < 0:
            return WORSE
        return NO_CLEAR_DIFFERENCE

    def scaled(self, factor: float) -> Comparison:
        """The same comparison with the difference and bounds multiplied by ``factor`` (> 0)."""
        return _scaled(self, factor, ("difference", "low", "high"))

    def __format__(self, spec: str) -> str:
        spec = spec or "+.1f"
        if not spec.startswith(("+", "-", " ")):
            spec = "+" + spec
        numbers = [_format_number(v, spec) for v in (self.difference, self.low, self.high)]
        text = f"{numbers[0]} [{numbers[1]}, {numbers[2]}]"
        return f"{text} {self.verdict}" if self.show_verdict else text

    def __str__(self) -> str:
        return format(self, "")

    def to_json(self) -> dict[str, float | int | str]:
        data = {**asdict(self), "verdict": self.verdict}
        if self.show_verdict:  # the default; written only when a table turned it off
            del data["show_verdict"]
        return data


# ------------------------------------------------------------------------------- statistics


@dataclass(frozen=True, eq=False)
class Statistic:
    """A metric of per-item, per-seed outputs, evaluable on weighted resamples.

    Attributes:
        name: what it measures (``accuracy``, ``map``, ``auroc``, ``class_miou`` ...); a
            paired difference needs the same name on both sides.
        evaluate: ``(item_counts (R, N), seed_counts (R, S)) -> (R,)`` values; counts are
            float multiplicities (all ones: the full test set).
        num_items: N test items.
        num_seeds: S probe seeds.
        labels: what the items are (class ids (N,), or targets (N, C)); a paired difference
            refuses two statistics whose labels differ, since they were not scored on the
            same test items.
        strata: (N,) group of each item (e.g. the fold of a leave-one-fold-out probe) or
            ``None``; items are resampled within their group, so each group keeps its size.
        parts: for :func:`mean_of`, the statistics averaged (checked part by part when
            paired); empty otherwise.
    """

    name: str
    evaluate: Evaluate
    num_items: int
    num_seeds: int
    labels: np.ndarray | None = None
    strata: np.ndarray | None = None
    parts: tuple[Statistic, ...] = ()

    def value(self) -> float:
        """The statistic on the full test set, averaged over the seeds."""
        ones_items = np.ones((1, self.num_items))
        ones_seeds = np.ones((1, self.num_seeds))
        return float(self.evaluate(ones_items, ones_seeds)[0])


def _per_seed_items(values: np.ndarray, name: str) -> np.ndarray:
    """(N,) or (S, N) -> float64 (S, N), checked."""
    array = np.asarray(values)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{name}: expected (seeds, items) or (items,), got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return array


def _group_ids(groups: np.ndarray, num_items: int, name: str) -> tuple[np.ndarray, int]:
    """Any (N,) labels -> ids 0..K-1 and K."""
    groups = np.asarray(groups)
    if groups.shape != (num_items,):
        raise ValueError(f"{name}: expected shape ({num_items},), got {groups.shape}")
    _, ids = np.unique(groups, return_inverse=True)
    return ids.reshape(-1), int(ids.max()) + 1


def _seed_mean(values: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
    """(S, N) per-seed item values, (R, S) seed counts -> (R, N) mean over drawn seeds."""
    return seed_counts @ values / seed_counts.sum(axis=1, keepdims=True)


def _mean_over_groups(per_item: np.ndarray, item_counts: np.ndarray, one_hot: np.ndarray):
    """Mean over groups present in each resample of the group's weighted item mean."""
    sums = (per_item * item_counts) @ one_hot  # (R, K)
    counts = item_counts @ one_hot
    present = counts > 0
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=present)
    return means.sum(axis=1) / present.sum(axis=1)


def mean_statistic(
    values: np.ndarray,
    *,
    name: str = "mean",
    labels: np.ndarray | None = None,
    strata: np.ndarray | None = None,
) -> Statistic:
    """The mean of per-item ``values`` (S, N) or (N,) over items, then over seeds; with
    ``strata`` the mean over strata of each stratum's mean (a leave-one-fold-out score).

    >>> mean_statistic(np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])).value()
    0.875
    >>> mean_statistic(np.array([1.0, 0.0, 0.0, 0.0]), strata=np.array([0, 1, 1, 1])).value()
    0.5
    """
    per_seed = _per_seed_items(values, name)
    num_seeds, num_items = per_seed.shape
    if strata is None:

        def evaluate(item_counts: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
            per_item = _seed_mean(per_seed, seed_counts)
            return (per_item * item_counts).sum(axis=1) / item_counts.sum(axis=1)

    else:
        ids, num_groups = _group_ids(strata, num_items, "strata")
        one_hot = np.eye(num_groups)[ids]

        def evaluate(item_counts: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
            per_item = _seed_mean(per_seed, seed_counts)
            return _mean_over_groups(per_item, item_counts, one_hot)

    return Statistic(name, evaluate, num_items, num_seeds, _labels(labels, num_items), strata)


def _labels(labels: np.ndarray | None, num_items: int) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if len(labels) != num_items:
        raise ValueError(f"labels: {len(labels)} rows for {num_items} items")
    return labels


def accuracy_statistic(
    correct: np.ndarray, *, labels: np.ndarray | None = None, strata: np.ndarray | None = None
) -> Statistic:
    """Accuracy from per-item correctness ``correct`` (S, N) or (N,) bool: mean over items
    (over strata of their means, with ``strata``), then over seeds. ``labels`` (N,): the
    true class of each item, checked by :func:`paired_difference`.

    >>> accuracy_statistic(np.array([True, True, False, True])).value()
    0.75
    """
    return mean_statistic(np.asarray(correct), name="accuracy", labels=labels, strata=strata)


def miou_statistic(
    ious: np.ndarray, class_ids: np.ndarray, *, average: Literal["class", "instance"]
) -> Statistic:
    """Segmentation mIoU from per-item (per-shape) IoUs ``ious`` (S, N) or (N,) and each
    item's category ``class_ids`` (N,): ``instance`` is the mean over items (I.mIoU),
    ``class`` the mean over categories of their items' mean (C.mIoU), as
    ``rq_points.evaluate.part_iou`` computes them. A category that a resample happens to
    miss is left out of that resample's mean, as a category absent from a test set is.

    >>> ious = np.array([0.5, 0.7, 0.9]); categories = np.array([0, 0, 1])
    >>> round(miou_statistic(ious, categories, average="instance").value(), 6)
    0.7
    >>> miou_statistic(ious, categories, average="class").value()
    0.75
    """
    if average not in ("class", "instance"):
        raise ValueError(f"average must be 'class' or 'instance', got {average!r}")
    per_seed = _per_seed_items(ious, f"{average} mIoU IoUs")
    num_items = per_seed.shape[1]
    ids, num_classes = _group_ids(class_ids, num_items, "class_ids")
    if average == "instance":
        return mean_statistic(per_seed, name="instance_miou", labels=np.asarray(class_ids))
    one_hot = np.eye(num_classes)[ids]

    def evaluate(item_counts: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
        return _mean_over_groups(_seed_mean(per_seed, seed_counts), item_counts, one_hot)

    return Statistic("class_miou", evaluate, num_items, per_seed.shape[0], np.asarray(class_ids))


class _RankedClass:
    """One seed's scores of one class, sorted once (descending) and cut into runs of tied
    scores, so a weighted resample is scored by group sums and cumulative sums.

    Counts come item-major, ``(N, R)``: gathering items is then a copy of whole rows and a
    cumulative sum over items adds rows, both contiguous (~10x faster than along a row).
    Only groups holding a positive item enter the final sums.
    """

    def __init__(self, scores: np.ndarray, targets: np.ndarray) -> None:
        self.order = np.argsort(-scores, kind="mergesort")
        sorted_scores = scores[self.order]
        positive = targets[self.order].astype(bool)
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores) != 0) + 1]
        self.starts = None if len(starts) == len(scores) else starts
        if self.starts is None:
            self.positive_mask = None
            self.positive_groups = np.flatnonzero(positive)
        else:
            self.positive_mask = positive.astype(np.float64)[:, None]
            self.positive_groups = np.flatnonzero(np.add.reduceat(positive, starts) > 0)

    def _sums(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From item-major counts (N, R): items drawn per tie group (G, R), cumulated over
        the groups down to each positive group (P, R), and positives drawn in each positive
        group (P, R); groups best scores first."""
        drawn = counts[self.order]
        if self.starts is None:
            positives = drawn[self.positive_groups]
        else:
            positives = np.add.reduceat(drawn * self.positive_mask, self.starts, axis=0)
            positives = positives[self.positive_groups]
            drawn = np.add.reduceat(drawn, self.starts, axis=0)
        drawn_so_far = np.cumsum(drawn, axis=0)[self.positive_groups]
        return drawn, drawn_so_far, positives

    def average_precision(self, counts: np.ndarray) -> np.ndarray:
        """``sum_g positives_g * precision_g / P`` over the distinct thresholds (scikit-learn's
        step AP) for each resample; ``nan`` where a resample has no positive."""
        _, predicted, positives = self._sums(counts)
        true_positives = np.cumsum(positives, axis=0)
        precision = np.divide(
            true_positives, predicted, out=np.zeros_like(predicted), where=predicted > 0
        )
        total_positives = positives.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ap = (positives * precision).sum(axis=0) / total_positives
        return np.where(total_positives > 0, ap, np.nan)

    def roc_auc(self, counts: np.ndarray) -> np.ndarray:
        """Mann-Whitney U with average ranks over tied scores for each resample; ``nan``
        where a resample lacks positives or negatives."""
        drawn, drawn_so_far, positives = self._sums(counts)
        total = drawn.sum(axis=0)
        below = total - drawn_so_far  # drawn items scored strictly lower
        average_rank = below + (drawn[self.positive_groups] + 1.0) / 2.0  # ascending, 1-based
        rank_sum = (positives * average_rank).sum(axis=0)
        num_pos = positives.sum(axis=0)
        num_neg = total - num_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg)
        return np.where((num_pos > 0) & (num_neg > 0), auc, np.nan)


def _multilabel_statistic(
    name: str,
    scores: np.ndarray,
    targets: np.ndarray,
    strata: np.ndarray | None,
    metric: Callable[[_RankedClass, np.ndarray], np.ndarray],  # (counts (N, R)) -> (R,)
) -> Statistic:
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.ndim == 2:
        scores = scores[None]
    if scores.ndim != 3 or targets.ndim != 2 or scores.shape[1:] != targets.shape:
        raise ValueError(
            f"{name}: scores must be (seeds, N, C) or (N, C) and targets (N, C), got "
            f"{scores.shape} and {targets.shape}"
        )
    if not np.isfinite(scores).all():
        raise ValueError(f"{name}: scores contain NaN or Inf")
    num_seeds, num_items, num_classes = scores.shape
    ranked = [
        [_RankedClass(scores[s, :, c], targets[:, c]) for c in range(num_classes)]
        for s in range(num_seeds)
    ]
    if strata is None:
        masks = [np.ones(num_items)]
    else:
        ids, num_groups = _group_ids(strata, num_items, "strata")
        masks = [(ids == g).astype(np.float64) for g in range(num_groups)]

    def macro(seed: int, counts: np.ndarray) -> np.ndarray:
        """(R,) mean over the classes defined in each resample; nan where none is."""
        per_class = np.stack([metric(r, counts) for r in ranked[seed]], axis=1)
        defined = ~np.isnan(per_class)
        with np.errstate(invalid="ignore"):
            return np.where(defined, per_class, 0.0).sum(axis=1) / defined.sum(axis=1)

    def evaluate(item_counts: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
        # Item-major copies (N, R), one per stratum, shared by every seed and class.
        counts = [np.ascontiguousarray((item_counts * mask).T) for mask in masks]
        per_seed = np.stack(
            [
                np.mean([macro(s, c) for c in counts], axis=0)
                if seed_counts[:, s].any()
                else np.zeros(len(item_counts))
                for s in range(num_seeds)
            ],
            axis=1,
        )  # (R, S): a seed no resample drew is not scored
        weighted = np.where(seed_counts > 0, seed_counts * per_seed, 0.0)
        return weighted.sum(axis=1) / seed_counts.sum(axis=1)

    return Statistic(name, evaluate, num_items, num_seeds, targets, strata)


def map_statistic(
    scores: np.ndarray, targets: np.ndarray, *, strata: np.ndarray | None = None
) -> Statistic:
    """Multi-label mAP (:func:`rq_core.probe_metrics.mean_average_precision`) of ``scores``
    (S, N, C) or (N, C) against 0/1 ``targets`` (N, C), averaged over seeds; with ``strata``
    the mean over strata of each stratum's mAP.

    >>> map_statistic(np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.4]]), np.eye(3, 2)).value()
    1.0
    """
    return _multilabel_statistic("map", scores, targets, strata, _RankedClass.average_precision)


def auroc_statistic(
    scores: np.ndarray, targets: np.ndarray, *, strata: np.ndarray | None = None
) -> Statistic:
    """Multi-label macro AUROC (:func:`rq_core.probe_metrics.macro_auroc`) of ``scores``
    (S, N, C) or (N, C) against 0/1 ``targets`` (N, C), averaged over seeds.

    >>> auroc_statistic(np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.4]]), np.eye(3, 2)).value()
    1.0
    """
    return _multilabel_statistic("auroc", scores, targets, strata, _RankedClass.roc_auc)


def mean_of(statistics: Sequence[Statistic]) -> Statistic:
    """The mean of statistics on separate test sets, e.g. an "average over tasks" column.

    Each part keeps its own items: a resample redraws every part's items within that part
    (and within its folds), so the interval reflects every test set at its own size. The
    parts must have as many probe seeds; a resample draws seed positions once for all
    parts (the same probe seeds run on every task). Paired with another ``mean_of``, the
    parts are checked pair by pair.

    >>> a = accuracy_statistic(np.arange(100) % 10 != 0)   # 0.9 on task A
    >>> b = accuracy_statistic(np.arange(50) % 2 == 0)     # 0.5 on task B
    >>> mean_of([a, b]).value(), mean_of([a, b]).num_items
    (0.7, 150)
    """
    statistics = list(statistics)
    if not statistics:
        raise ValueError("mean_of needs at least one statistic")
    seed_counts = sorted({s.num_seeds for s in statistics})
    if len(seed_counts) > 1:
        raise ValueError(f"mean_of: the parts have different numbers of seeds {seed_counts}")
    bounds = np.cumsum([0] + [s.num_items for s in statistics])
    strata, offset = [], 0
    for part in statistics:
        if part.strata is None:
            ids, num_groups = np.zeros(part.num_items, dtype=np.int64), 1
        else:
            ids, num_groups = _group_ids(part.strata, part.num_items, "strata")
        strata.append(ids + offset)
        offset += num_groups

    def evaluate(item_counts: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
        values = [
            part.evaluate(item_counts[:, start:end], seed_counts)
            for part, start, end in zip(statistics, bounds[:-1], bounds[1:])
        ]
        return np.mean(values, axis=0)

    name = "mean of " + ", ".join(s.name for s in statistics)
    return Statistic(
        name,
        evaluate,
        int(bounds[-1]),
        seed_counts[0],
        strata=np.concatenate(strata),
        parts=tuple(statistics),
    )


# ------------------------------------------------------------------------------- bootstrap


def _item_counts(
    rng: np.random.Generator, num_resamples: int, num_items: int, strata: np.ndarray | None
) -> np.ndarray:
    """(R, N) multiplicities of N items drawn with replacement (within each stratum)."""
    counts = np.zeros((num_resamples, num_items))
    groups = [np.arange(num_items)] if strata is None else _strata_members(strata)
    for members in groups:
        size = len(members)
        draws = rng.integers(0, size, size=(num_resamples, size))
        offsets = np.arange(num_resamples)[:, None] * size
        flat = np.bincount((draws + offsets).ravel(), minlength=num_resamples * size)
        counts[:, members] = flat.reshape(num_resamples, size)
    return counts


def _strata_members(strata: np.ndarray) -> list[np.ndarray]:
    ids, num_groups = _group_ids(strata, len(strata), "strata")
    return [np.flatnonzero(ids == g) for g in range(num_groups)]


def _seed_counts(rng: np.random.Generator, num_resamples: int, num_seeds: int) -> np.ndarray:
    if num_seeds == 1:
        return np.ones((num_resamples, 1))
    return _item_counts(rng, num_resamples, num_seeds, None)


def _draw(
    statistics: list[Statistic], resamples: int, seed: int
) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Chunks of (item counts, one seed-count matrix per statistic).

    Items come from one generator and seeds from another, so a statistic's resamples do not
    depend on what it is paired with: two statistics with as many seeds share the seed
    draws, and a partner with another number of seeds gets draws of its own.
    """
    num_items = statistics[0].num_items
    chunk = max(1, min(resamples, _CHUNK_CELLS // max(num_items, 1)))
    item_rng = np.random.default_rng([seed, 0])
    seed_rngs = {}
    for statistic in statistics:
        seed_rngs.setdefault(statistic.num_seeds, np.random.default_rng([seed, 1 + len(seed_rngs)]))
    chunks = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        item_counts = _item_counts(item_rng, size, num_items, statistics[0].strata)
        by_seeds = {
            num_seeds: _seed_counts(rng, size, num_seeds) for num_seeds, rng in seed_rngs.items()
        }
        chunks.append((item_counts, [by_seeds[s.num_seeds] for s in statistics]))
    return chunks


def _interval(values: np.ndarray, level: float, what: str) -> tuple[float, float, int]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        raise ValueError(f"{what} is undefined on every resample")
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high), len(finite)


def _check_settings(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_estimate(
    statistic: Statistic,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Estimate:
    """The statistic on the full test set and its percentile-bootstrap interval.

    Each resample draws the N test items with replacement (within strata, if any) and, when
    there are several probe seeds, the S seeds with replacement; the statistic is evaluated
    on that weighted set. ``low``/``high`` are the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the resampled values. Same ``seed``, same interval.
    Resamples on which the statistic is undefined (a multi-label resample where no class
    has both positives and negatives) are dropped; ``Estimate.resamples`` counts those kept.

    >>> print(bootstrap_estimate(accuracy_statistic(np.arange(200) % 4 != 0)).scaled(100))
    75.0 [69.0, 81.5]
    """
    _check_settings(resamples, level)
    value = statistic.value()
    if not np.isfinite(value):
        raise ValueError(f"{statistic.name} is undefined on the full test set")
    values = np.concatenate(
        [
            statistic.evaluate(items, seeds[0])
            for items, seeds in _draw([statistic], resamples, seed)
        ]
    )
    low, high, kept = _interval(values, level, statistic.name)
    return Estimate(value, low, high, level, kept)


def _check_paired(a: Statistic, b: Statistic) -> None:
    if a.name != b.name:
        raise ValueError(f"cannot pair {a.name!r} with {b.name!r}: different statistics")
    if a.parts or b.parts:
        if len(a.parts) != len(b.parts):
            raise ValueError(f"{a.name}: {len(a.parts)} parts against {len(b.parts)}")
        for index, (part_a, part_b) in enumerate(zip(a.parts, b.parts)):
            try:
                _check_paired(part_a, part_b)
            except ValueError as error:
                raise ValueError(f"part {index} of {a.name}: {error}") from None
    if a.num_items != b.num_items:
        raise ValueError(
            f"{a.name}: the two methods were scored on different test sets "
            f"({a.num_items} vs {b.num_items} items)"
        )
    if a.labels is not None and b.labels is not None:
        if a.labels.shape != b.labels.shape or not np.array_equal(a.labels, b.labels):
            differ = np.asarray(a.labels != b.labels) if a.labels.shape == b.labels.shape else None
            where = ""
            if differ is not None:
                rows = np.flatnonzero(differ.reshape(len(differ), -1).any(axis=1))
                where = f" ({len(rows)} items differ, first at index {rows[0]})"
            raise ValueError(
                f"{a.name}: the two methods' test items have different labels{where}; "
                "a paired difference needs the same items in the same order"
            )
    same_strata = (a.strata is None and b.strata is None) or (
        a.strata is not None
        and b.strata is not None
        and np.array_equal(np.asarray(a.strata), np.asarray(b.strata))
    )
    if not same_strata:
        raise ValueError(f"{a.name}: the two methods' test items are in different folds/strata")


def paired_difference(
    a: Statistic,
    b: Statistic,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Comparison:
    """``a - b`` on the same test items, its percentile-bootstrap interval and verdict.

    Both statistics are evaluated on the same resampled items in every resample (and on the
    same resampled seed positions when both have as many seeds; otherwise each method's
    seeds are drawn on their own), so what the items have in common (easy and hard items)
    cancels and the interval measures only how the methods differ. Raises ``ValueError``
    when the two were not scored on the same test items (count, labels, strata) or are
    different statistics. With the same ``seed``, ``a``'s resamples are those of
    ``bootstrap_estimate(a, seed=seed)``.

    >>> truth = np.arange(100) % 10 != 0
    >>> str(paired_difference(accuracy_statistic(truth), accuracy_statistic(truth)))
    '+0.0 [+0.0, +0.0] no clear difference'
    """
    _check_settings(resamples, level)
    _check_paired(a, b)
    difference = a.value() - b.value()
    if not np.isfinite(difference):
        raise ValueError(f"{a.name} is undefined on the full test set")
    values = np.concatenate(
        [
            a.evaluate(items, seeds[0]) - b.evaluate(items, seeds[1])
            for items, seeds in _draw([a, b], resamples, seed)
        ]
    )
    low, high, kept = _interval(values, level, f"the {a.name} difference")
    return Comparison(difference, low, high, level, kept)


# ------------------------------------------------------------------------------- tables


def compare_methods(
    title: str,
    statistics: Mapping[str, Mapping[str, Statistic]],
    *,
    reference: str | None = "random",
    baseline: str | None = None,
    scale: float = 100.0,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> list[ResultsTable]:
    """The two tables every app's results show: each method's metric with its interval, and
    each method against ``reference`` (random init) and ``baseline`` (the modality's
    hand-made augmentation), paired on the same test items, with a verdict.

    Args:
        title: the estimates table's title; the comparisons table is ``title + " - paired"``.
        statistics: method -> {column (a task or metric) -> :class:`Statistic`}. Every
            method's statistic of a column must be built on the same test items in the same
            order (otherwise :func:`paired_difference` refuses, naming the column).
        reference, baseline: methods to compare every other method against (skipped when
            absent from ``statistics`` or ``None``); the baseline is also compared with the
            reference.
        scale: the factor of every number shown (100: percent).

    Returns:
        ``[estimates, comparisons]``, two :class:`rq_core.runs.ResultsTable`: estimates has a
        ``method`` column and one column per metric column (cells are :class:`Estimate`);
        comparisons has ``method``, ``against``, ``column``, ``difference`` (a
        :class:`Comparison` shown as "+1.2 [+0.3, +2.1]") and ``verdict`` ("better").

    >>> truth = np.arange(300) % 3 != 0  # 2/3 right
    >>> stats = {
    ...     "random": {"keyword": accuracy_statistic(truth & (np.arange(300) % 5 != 0))},
    ...     "rq": {"keyword": accuracy_statistic(truth)},
    ... }
    >>> estimates, paired = compare_methods("Linear probe", stats)
    >>> print(estimates.markdown(level=3))  # doctest: +NORMALIZE_WHITESPACE
    ### Linear probe
    <BLANKLINE>
    | method | keyword |
    |---|---|
    | random | 53.3 [48.0, 59.0] |
    | rq | 66.7 [61.0, 71.7] |
    <BLANKLINE>
    95 % percentile-bootstrap intervals over test items (and probe seeds), 1000 resamples.
    <BLANKLINE>
    >>> paired.rows[0]["verdict"]
    'better'
    """
    methods = list(statistics)
    columns: list[str] = []
    for per_column in statistics.values():
        columns += [c for c in per_column if c not in columns]
    estimates = ResultsTable(title, ["method", *columns])
    for method in methods:
        row = {"method": method}
        for column, statistic in statistics[method].items():
            estimate = bootstrap_estimate(statistic, resamples=resamples, level=level, seed=seed)
            row[column] = estimate.scaled(scale)
        estimates.add(**row)
    estimates.notes.append(
        f"{level:.0%} percentile-bootstrap intervals over test items (and probe seeds), "
        f"{resamples} resamples.".replace("%", " %")
    )

    comparisons = ResultsTable(
        f"{title} - paired", ["method", "against", "column", "difference", "verdict"]
    )
    against = [m for m in (reference, baseline) if m is not None and m in statistics]
    for other in against:
        for method in methods:
            if method == other or (method == reference and other == baseline):
                continue
            for column in columns:
                a, b = statistics[method].get(column), statistics[other].get(column)
                if a is None or b is None:
                    continue
                try:
                    comparison = paired_difference(
                        a, b, resamples=resamples, level=level, seed=seed
                    ).scaled(scale)
                    comparison = replace(comparison, show_verdict=False)
                except ValueError as error:
                    raise ValueError(f"{title}, {column}, {method} vs {other}: {error}") from None
                comparisons.add(
                    method=method,
                    against=other,
                    column=column,
                    difference=comparison,
                    verdict=comparison.verdict,
                )
    comparisons.notes.append(
        "difference = method - against on the same test items; better / worse: the whole "
        f"{level:.0%} interval is above / below 0.".replace("%", " %")
    )
    return [estimates, comparisons]
