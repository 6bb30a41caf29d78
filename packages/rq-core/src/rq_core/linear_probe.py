"""The linear-probe evaluator shared by every app: the EVAR protocol (Niizumi et al.).

Protocol (defaults from nttcslab/eval-audio-repr, ``lineareval.py`` and
``evar/utils/torch_mlp_clf2.py``): features standardized with the mean/std of the training
split; one ``Linear`` layer; Adam (lr 3e-4 as ``config/byola.yaml: lr_lineareval``, betas
0.9/0.999, eps 1e-8, weight decay 1e-8); mini-batches of ``min(200, n_train)``; at most 200
epochs; after each epoch the validation metric (accuracy, or mAP for multi-label) is taken
and training stops once it has not improved for ``patience`` = 20 epochs
(``early_stop_epochs: 20``), then the best epoch's weights are restored and scored on the
test split. EVAR runs one seed per call (42); we run several (42, 43, 44) and report mean
and sample std.

Leave-one-fold-out (:func:`linear_probe_folds`): each fold in turn is the test split; as in
EVAR, which uses no validation fold there, a random 10 % of the remaining samples
(``validation_fraction=0.1``) is held out for early stopping.

With ``return_predictions=True`` both also return each seed's per-item test outputs
(:class:`ProbePredictions`, under the key ``"predictions"``), from which
:mod:`rq_core.uncertainty` builds confidence intervals and paired comparisons. They are numpy
arrays, not JSON: pop the key before writing the summary to ``results.json``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rq_core.probe_metrics import accuracy, macro_auroc, mean_average_precision
from rq_core.uncertainty import Statistic, accuracy_statistic, auroc_statistic, map_statistic

__all__ = ["ProbePredictions", "ProbeSettings", "linear_probe", "linear_probe_folds"]

ArrayLike = np.ndarray | Tensor


@dataclass(frozen=True)
class ProbeSettings:
    """Optimization settings of one probe (see the module docstring for their sources)."""

    lr: float = 3e-4  # EVAR config/byola.yaml lr_lineareval
    max_epochs: int = 200  # EVAR lineareval.py: epochs or 200
    patience: int = 20  # EVAR config/*.yaml early_stop_epochs
    batch_size: int = 200  # EVAR TorchMLPClassifier2: batch_size 'auto' = min(200, n)
    weight_decay: float = 1e-8  # EVAR TorchMLPClassifier2: alpha=1e-8
    standardize: bool = True  # EVAR: standard_scaler=True
    validation_fraction: float = 0.1  # EVAR TorchMLPClassifier2: validation_fraction=0.1

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.max_epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ValueError("max_epochs, patience and batch_size must be >= 1")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )


@dataclass(frozen=True, eq=False)
class ProbePredictions:
    """Each probe seed's outputs on every test item, in the order the test items were given
    (for :func:`linear_probe_folds`: the order of ``features``, every item scored once per
    seed, by the probe for which its fold was held out).

    Attributes:
        seeds: the probe seeds, S of them.
        targets: (N,) int64 class ids ``0..C-1`` (single-label) or (N, C) float32 0/1.
        predicted: (S, N) int64 argmax class ids (single-label), else ``None``.
        scores: (S, N, C) float32 test logits (multi-label), else ``None``.
        classes: (C,) the original label of each class id (single-label), else ``None``.
        folds: (N,) the held-out fold of each item (:func:`linear_probe_folds`), else ``None``.

    >>> p = ProbePredictions((42, 43), np.array([0, 1, 1]), np.array([[0, 1, 0], [0, 1, 1]]),
    ...                      None, np.array(["cat", "dog"]))
    >>> p.correct.mean(axis=1).tolist(), round(p.statistic("accuracy").value(), 4)
    ([0.6666666666666666, 1.0], 0.8333)
    """

    seeds: tuple[int, ...]
    targets: np.ndarray
    predicted: np.ndarray | None
    scores: np.ndarray | None
    classes: np.ndarray | None
    folds: np.ndarray | None = None

    @property
    def multilabel(self) -> bool:
        return self.scores is not None

    @property
    def num_items(self) -> int:
        return len(self.targets)

    @property
    def correct(self) -> np.ndarray:
        """(S, N) bool: whether each seed's probe got each item right (single-label)."""
        if self.predicted is None:
            raise ValueError("per-item correctness is defined for single-label probes only")
        return self.predicted == self.targets[None]

    def statistic(self, metric: str | None = None) -> Statistic:
        """The :class:`rq_core.uncertainty.Statistic` of ``metric``: ``accuracy``
        (single-label, the default there), ``map`` or ``auroc`` (multi-label, one must be
        named). Its value is the summary's ``<metric>_mean``; folds are kept as strata."""
        available = ("map", "auroc") if self.multilabel else ("accuracy",)
        if metric is None and not self.multilabel:
            metric = "accuracy"
        if metric not in available:
            raise ValueError(
                f"metric {metric!r} is not available for a "
                f"{'multi' if self.multilabel else 'single'}-label probe; choose from "
                f"{list(available)}"
            )
        if metric == "accuracy":
            return accuracy_statistic(self.correct, labels=self.targets, strata=self.folds)
        build = map_statistic if metric == "map" else auroc_statistic
        return build(self.scores, self.targets, strata=self.folds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProbePredictions):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(a, b)
    return a == b


def _as_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    array = np.asarray(x)
    if array.size and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return array


class _Split:
    """One split as float32 features plus targets (class ids, or a 0/1 matrix)."""

    def __init__(self, name: str, features: ArrayLike, labels: ArrayLike) -> None:
        self.features = _as_numpy(features, f"{name} features").astype(np.float32, copy=False)
        self.labels = _as_numpy(labels, f"{name} labels")
        if self.features.ndim != 2:
            raise ValueError(f"{name} features must be (N, D), got shape {self.features.shape}")
        if len(self.labels) != len(self.features):
            raise ValueError(
                f"{name}: {len(self.features)} feature rows but {len(self.labels)} labels"
            )
        if len(self.features) == 0:
            raise ValueError(f"{name} split is empty")


def _encode_labels(
    train: _Split, others: Sequence[_Split], multilabel: bool
) -> tuple[int, np.ndarray | None]:
    """Turn labels into class ids (single-label) in place; return the number of classes and
    (single-label) the label value of each class id."""
    if multilabel:
        for split in (train, *others):
            if split.labels.ndim != 2:
                raise ValueError(
                    f"multilabel=True needs (N, C) 0/1 labels, got shape {split.labels.shape}"
                )
            split.labels = split.labels.astype(np.float32)
        num_classes = train.labels.shape[1]
        if any(split.labels.shape[1] != num_classes for split in others):
            raise ValueError("every split must have the same number of label columns")
        return num_classes, None
    if train.labels.ndim != 1:
        raise ValueError(
            f"single-label probing needs (N,) labels, got shape {train.labels.shape}; "
            "pass multilabel=True for (N, C) label matrices"
        )
    classes = np.unique(train.labels)
    if len(classes) < 2:
        raise ValueError(f"the training split has a single class ({classes.tolist()})")
    for split in (train, *others):
        ids = np.searchsorted(classes, split.labels)
        ids = np.clip(ids, 0, len(classes) - 1)
        unknown = classes[ids] != split.labels
        if unknown.any():
            raise ValueError(
                f"labels {np.unique(split.labels[unknown]).tolist()} do not occur in the "
                "training split"
            )
        split.labels = ids.astype(np.int64)
    return len(classes), classes


def _scores(model: nn.Module, features: Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(features).float().cpu().numpy()


def _validation_metric(scores: np.ndarray, labels: np.ndarray, multilabel: bool) -> float:
    if multilabel:
        return mean_average_precision(scores, labels)
    return accuracy(scores, labels)


def _fit_one_seed(
    train: _Split,
    valid: _Split,
    test: _Split,
    num_classes: int,
    multilabel: bool,
    seed: int,
    settings: ProbeSettings,
    device: torch.device,
) -> tuple[dict[str, float], np.ndarray]:
    """Train one probe; return its metrics and its (N_test, C) test scores."""
    generator = torch.Generator().manual_seed(seed)
    x_train = torch.from_numpy(train.features).to(device)
    y_train = torch.from_numpy(train.labels).to(device)
    x_valid = torch.from_numpy(valid.features).to(device)
    x_test = torch.from_numpy(test.features).to(device)
    model = nn.Linear(x_train.shape[1], num_classes)
    # Same init as nn.Linear's default, but from our generator so global RNG is untouched.
    bound = 1.0 / math.sqrt(x_train.shape[1])
    with torch.no_grad():
        model.weight.uniform_(-bound, bound, generator=generator)
        model.bias.uniform_(-bound, bound, generator=generator)
    model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=settings.lr,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=settings.weight_decay,
    )
    batch_size = min(settings.batch_size, len(x_train))
    best_metric, best_epoch, best_state = -math.inf, -1, copy.deepcopy(model.state_dict())
    for epoch in range(settings.max_epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            logits = model(x_train[batch])
            if multilabel:
                loss = F.binary_cross_entropy_with_logits(logits, y_train[batch])
            else:
                loss = F.cross_entropy(logits, y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        metric = _validation_metric(_scores(model, x_valid), valid.labels, multilabel)
        # ">=" as EVAR's EarlyStopping: a tie moves the best epoch forward.
        if metric >= best_metric:
            best_metric, best_epoch = metric, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= settings.patience:
            break
    model.load_state_dict(best_state)
    test_scores = _scores(model, x_test)
    result = {"best_epoch": float(best_epoch + 1), "valid_metric": float(best_metric)}
    if multilabel:
        result["map"] = mean_average_precision(test_scores, test.labels)
        result["auroc"] = macro_auroc(test_scores, test.labels)
    else:
        result["accuracy"] = accuracy(test_scores, test.labels)
    return result, test_scores


def _summarize(per_seed: list[dict[str, float]], seeds: Sequence[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {"seeds": [int(s) for s in seeds]}
    for key in per_seed[0]:
        values = np.array([run[key] for run in per_seed], dtype=np.float64)
        summary[f"{key}_mean"] = float(values.mean())
        # Sample std over seeds (ddof=1); 0 for a single seed.
        summary[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[f"{key}_per_seed"] = values.tolist()
    return summary


def linear_probe(
    train: tuple[ArrayLike, ArrayLike],
    valid: tuple[ArrayLike, ArrayLike],
    test: tuple[ArrayLike, ArrayLike],
    *,
    seeds: Sequence[int] = (42, 43, 44),
    multilabel: bool = False,
    settings: ProbeSettings | None = None,
    device: str | torch.device = "cpu",
    return_predictions: bool = False,
) -> dict[str, Any]:
    """Train one linear layer per seed on frozen features; score the test split.

    Args:
        train, valid, test: ``(features, labels)``; features (N, D) numpy or torch;
            labels (N,) of any sortable type (single-label) or (N, C) 0/1 (multi-label).
        seeds: one probe per seed (init and batch order); mean and sample std reported.
        multilabel: BCE loss, early stopping on validation mAP, test mAP and macro AUROC.
        settings: optimization settings (:class:`ProbeSettings`, EVAR defaults).
        device: where the probe trains.
        return_predictions: also return each seed's per-item test outputs under
            ``"predictions"`` (:class:`ProbePredictions`; not JSON, pop it before writing).

    Returns:
        ``{"seeds", "<metric>_mean", "<metric>_std", "<metric>_per_seed", ...}`` with metric
        ``accuracy`` (single-label) or ``map`` and ``auroc`` (multi-label), plus
        ``best_epoch`` and ``valid_metric`` summaries, ``num_classes`` and split sizes.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(120, 4)).astype(np.float32); y = (x[:, 0] > 0).astype(int)
    >>> fast = ProbeSettings(lr=0.1)  # a tiny toy set: EVAR's 3e-4 needs many more steps
    >>> r = linear_probe((x[:80], y[:80]), (x[80:100], y[80:100]), (x[100:], y[100:]),
    ...                  seeds=(42,), settings=fast)
    >>> r["accuracy_mean"] > 0.8
    True
    >>> quick = ProbeSettings(lr=0.1, max_epochs=20)
    >>> r = linear_probe((x[:80], y[:80]), (x[80:100], y[80:100]), (x[100:], y[100:]),
    ...                  seeds=(42, 43), settings=quick, return_predictions=True)
    >>> predictions = r.pop("predictions")  # numpy arrays: keep them out of results.json
    >>> predictions.correct.shape, abs(predictions.statistic().value() - r["accuracy_mean"]) < 1e-12
    ((2, 20), True)
    """
    settings = settings or ProbeSettings()
    if len(seeds) == 0:
        raise ValueError("seeds must name at least one seed")
    splits = [
        _Split(name, *pair) for name, pair in (("train", train), ("valid", valid), ("test", test))
    ]
    train_split, valid_split, test_split = splits
    dims = {split.features.shape[1] for split in splits}
    if len(dims) != 1:
        raise ValueError(f"feature dimensions differ between splits: {sorted(dims)}")
    num_classes, classes = _encode_labels(train_split, [valid_split, test_split], multilabel)
    if settings.standardize:
        # Statistics of the training split only (EVAR's StandardScaler.fit(X_train)).
        mean = train_split.features.mean(axis=0, dtype=np.float64)
        std = train_split.features.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0  # constant features stay constant instead of dividing by zero
        for split in splits:
            split.features = ((split.features - mean) / std).astype(np.float32)
    device = torch.device(device)
    runs = [
        _fit_one_seed(
            train_split, valid_split, test_split, num_classes, multilabel, seed, settings, device
        )
        for seed in seeds
    ]
    summary = _summarize([metrics for metrics, _ in runs], seeds)
    summary.update(
        num_classes=num_classes,
        num_train=len(train_split.features),
        num_valid=len(valid_split.features),
        num_test=len(test_split.features),
    )
    if return_predictions:
        scores = np.stack([test_scores for _, test_scores in runs]).astype(np.float32)
        summary["predictions"] = ProbePredictions(
            seeds=tuple(int(s) for s in seeds),
            targets=test_split.labels,
            predicted=None if multilabel else np.argmax(scores, axis=2).astype(np.int64),
            scores=scores if multilabel else None,
            classes=classes,
        )
    return summary


def linear_probe_folds(
    features: ArrayLike,
    labels: ArrayLike,
    folds: ArrayLike,
    *,
    seeds: Sequence[int] = (42, 43, 44),
    multilabel: bool = False,
    settings: ProbeSettings | None = None,
    device: str | torch.device = "cpu",
    return_predictions: bool = False,
) -> dict[str, Any]:
    """Leave-one-fold-out probing: each fold is the test split once.

    For held-out fold f and each seed, a random ``settings.validation_fraction`` of the other
    folds (drawn with that seed) is the validation split and the rest trains. A seed's score
    is the mean over folds; mean and std are then taken over seeds.

    Shapes: ``features`` (N, D), ``labels`` (N,) or (N, C), ``folds`` (N,) fold ids.

    Returns: as :func:`linear_probe`, plus ``"folds"`` (the fold ids) and
    ``"<metric>_per_fold"`` (mean over seeds of each fold's score). With
    ``return_predictions``, ``"predictions"`` holds every item's held-out outputs in the
    order of ``features``, with ``folds`` set, so that its statistics average over folds as
    the summary does and resample items within their fold.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(90, 3)).astype(np.float32); y = (x[:, 1] > 0).astype(int)
    >>> r = linear_probe_folds(x, y, np.arange(90) % 3, seeds=(42,), settings=ProbeSettings(lr=0.1))
    >>> r["folds"], r["accuracy_mean"] > 0.8
    ([0, 1, 2], True)
    >>> r = linear_probe_folds(x, y, np.arange(90) % 3, seeds=(42,), return_predictions=True,
    ...                        settings=ProbeSettings(lr=0.1, max_epochs=20))
    >>> predictions = r.pop("predictions")
    >>> predictions.folds.shape, abs(predictions.statistic().value() - r["accuracy_mean"]) < 1e-12
    ((90,), True)
    """
    settings = settings or ProbeSettings()
    features_np = _as_numpy(features, "features")
    labels_np = _as_numpy(labels, "labels")
    folds_np = _as_numpy(folds, "folds")
    if not (len(features_np) == len(labels_np) == len(folds_np)):
        raise ValueError(
            f"features ({len(features_np)}), labels ({len(labels_np)}) and folds "
            f"({len(folds_np)}) must have the same length"
        )
    fold_ids = np.unique(folds_np)
    if len(fold_ids) < 2:
        raise ValueError(f"leave-one-fold-out needs >= 2 folds, got {fold_ids.tolist()}")
    per_seed: list[dict[str, float]] = []
    per_fold_runs: dict[str, list[list[float]]] = {}
    held_out = _HeldOutPredictions(labels_np, folds_np, len(seeds), multilabel)
    for seed_index, seed in enumerate(seeds):
        fold_results = []
        for fold in fold_ids:
            test_mask = folds_np == fold
            rest = np.flatnonzero(~test_mask)
            shuffled = np.random.default_rng(seed).permutation(rest)
            num_valid = max(1, int(round(settings.validation_fraction * len(rest))))
            valid_idx, train_idx = shuffled[:num_valid], shuffled[num_valid:]
            result = linear_probe(
                (features_np[train_idx], labels_np[train_idx]),
                (features_np[valid_idx], labels_np[valid_idx]),
                (features_np[test_mask], labels_np[test_mask]),
                seeds=(seed,),
                multilabel=multilabel,
                settings=settings,
                device=device,
                return_predictions=return_predictions,
            )
            if return_predictions:
                held_out.add(seed_index, test_mask, result.pop("predictions"))
            fold_results.append(result)
        metrics = [k[: -len("_mean")] for k in fold_results[0] if k.endswith("_mean")]
        per_seed.append(
            {m: float(np.mean([r[f"{m}_mean"] for r in fold_results])) for m in metrics}
        )
        for m in metrics:
            per_fold_runs.setdefault(m, []).append([r[f"{m}_mean"] for r in fold_results])
    summary = _summarize(per_seed, seeds)
    summary["folds"] = fold_ids.tolist()
    for m, runs in per_fold_runs.items():
        summary[f"{m}_per_fold"] = np.mean(np.array(runs), axis=0).tolist()
    if return_predictions:
        summary["predictions"] = held_out.result(seeds)
    return summary


class _HeldOutPredictions:
    """Collects each fold's test outputs of :func:`linear_probe_folds` into one
    :class:`ProbePredictions` over all items, class ids numbered over the whole set."""

    def __init__(
        self, labels: np.ndarray, folds: np.ndarray, num_seeds: int, multilabel: bool
    ) -> None:
        self.folds = folds
        self.multilabel = multilabel
        self.classes = None if multilabel else np.unique(labels)
        if multilabel:
            self.targets = labels.astype(np.float32)
            self.outputs = np.zeros((num_seeds, *labels.shape), dtype=np.float32)
        else:
            self.targets = np.searchsorted(self.classes, labels).astype(np.int64)
            self.outputs = np.zeros((num_seeds, len(labels)), dtype=np.int64)

    def add(self, seed_index: int, test_mask: np.ndarray, fold: ProbePredictions) -> None:
        if self.multilabel:
            self.outputs[seed_index, test_mask] = fold.scores[0]
        else:
            # Ids of the fold's probe index its own training classes: go through the labels.
            labels = fold.classes[fold.predicted[0]]
            self.outputs[seed_index, test_mask] = np.searchsorted(self.classes, labels)

    def result(self, seeds: Sequence[int]) -> ProbePredictions:
        return ProbePredictions(
            seeds=tuple(int(s) for s in seeds),
            targets=self.targets,
            predicted=None if self.multilabel else self.outputs,
            scores=self.outputs if self.multilabel else None,
            classes=self.classes,
            folds=self.folds,
        )
