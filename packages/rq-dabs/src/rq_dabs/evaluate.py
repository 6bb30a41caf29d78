"""Linear transfer on frozen features: DABS's protocol, and rq-core's EVAR probe as an option.

DABS (``transfer.py``, ``conf/transfer.yaml``, ``src/systems/transfer.py``): the pretrained
encoder is frozen, one ``Linear(256, num_classes)`` on the pooled feature (``prehead=True``)
is trained with AdamW (lr 1e-4, weight decay 1e-4) for 100 epochs with the dataset's batch
size, and the metric of the dataset is reported on its held-out split: accuracy
(cross-entropy), AUROC (multi-label x-rays, binary cross-entropy), Pearson (CoLA) or Spearman
(STS-B, MSE loss) for GLUE. We compute the frozen features once, in eval mode, instead of at
every epoch (the reference leaves dropout on while it trains the head); see docs/decisions.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rq_core import features
from rq_core.probe_metrics import macro_auroc
from rq_core.uncertainty import Statistic, accuracy_statistic, auroc_statistic
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from rq_dabs.encoder import DomainAgnosticTransformer

__all__ = [
    "METRICS",
    "TRANSFER_PROTOCOLS",
    "TransferSettings",
    "dabs_linear_transfer",
    "extract_features",
    "probe_linear_transfer",
    "transfer_statistic",
]


def extract_features(
    model: DomainAgnosticTransformer,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
) -> tuple[Tensor, Tensor]:
    """Pooled ``(N, dim)`` features (``prehead=True``, eval mode, no gradients) and the labels
    of ``dataset`` (DABS items ``(index, *inputs, label)``), through rq-core's one extraction
    loop (:func:`rq_core.features.extract_features`)."""
    device = next(model.parameters()).device

    def encode(batch: list[Tensor]) -> dict[str, Tensor]:
        inputs = [x.to(device) for x in batch[1:-1]]
        return {"features": model(inputs, prehead=True), "labels": torch.as_tensor(batch[-1])}

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    out = features.extract_features(encode, loader, modules=model, progress=False)
    return torch.from_numpy(out["features"]), torch.from_numpy(out["labels"])


def _accuracy(outputs: Tensor, labels: Tensor) -> float:
    if outputs.shape[1] == 1:  # one logit: binary (BCE) tasks
        return float(((outputs[:, 0] > 0).long() == labels.long()).float().mean())
    return float((outputs.argmax(1) == labels).float().mean())


def _auroc(outputs: Tensor, labels: Tensor) -> float:
    return float(macro_auroc(torch.sigmoid(outputs).numpy(), labels.numpy()))


def _pearson(outputs: Tensor, labels: Tensor) -> float:
    x, y = outputs[:, 0].double(), labels.double()
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x.norm() * y.norm()).clamp_min(1e-12))


def _spearman(outputs: Tensor, labels: Tensor) -> float:
    from scipy.stats import spearmanr  # only the STS-B metric needs scipy

    return float(spearmanr(outputs[:, 0].numpy(), labels.numpy()).statistic)


#: metric name -> (function of (outputs (N, K), labels) -> float).
METRICS: dict[str, Callable[[Tensor, Tensor], float]] = {
    "accuracy": _accuracy,
    "auroc": _auroc,
    "pearson": _pearson,
    "spearman": _spearman,
}

_LOSSES = {
    "cross_entropy": lambda out, y: F.cross_entropy(out, y.long()),
    "binary_cross_entropy": lambda out, y: F.binary_cross_entropy_with_logits(
        out if y.ndim == 2 else out[:, 0], y.float()
    ),
    "mse": lambda out, y: F.mse_loss(out[:, 0], y.float()),
}


@dataclass
class TransferSettings:
    """DABS transfer settings (``conf/transfer.yaml``; batch size from ``conf/dataset/*``);
    the app config embeds them as ``transfer``."""

    epochs: int = 100  # trainer.max_epochs: 100
    lr: float = 1e-4  # optim.lr: 0.0001
    weight_decay: float = 1e-4  # optim.weight_decay: 0.0001
    batch_size: int = (
        64  # conf/dataset/*.yaml: 64 (224 px, speech), 256 (small images, PAMAP2), 128 (text)
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # heads trained per encoder
    #: Standardize features with the train split's mean/std first (not in DABS; the demo's
    #: short budgets leave feature scales that differ between algorithms).
    standardize: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or not self.seeds:
            raise ValueError(f"bad transfer settings: {self}")


def dabs_linear_transfer(
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    num_outputs: int,
    loss: str = "cross_entropy",
    metric: str = "accuracy",
    settings: TransferSettings | None = None,
    heads: list[dict[str, Tensor]] | None = None,
    test_outputs: list[Tensor] | None = None,
) -> dict[str, Any]:
    """Train ``Linear(D, num_outputs)`` on frozen ``train`` features; score ``test``.

    ``heads``: if a list is given, each seed's trained head (state dict, plus the
    standardization's ``mean``/``std`` when used) is appended to it. ``test_outputs``: if a
    list is given, each seed's test logits ``(N, num_outputs)`` are appended to it (what
    :func:`transfer_statistic` turns into intervals and paired comparisons).

    Returns ``{"<metric>_mean", "<metric>_std", "<metric>_per_seed", "metric", "protocol"}``.

    >>> x = torch.randn(200, 8); y = (x[:, 0] > 0).long()
    >>> r = dabs_linear_transfer((x[:150], y[:150]), (x[150:], y[150:]), num_outputs=2,
    ...                          settings=TransferSettings(epochs=30, lr=1e-2, seeds=(0,)))
    >>> r["accuracy_mean"] > 0.8
    True
    """
    settings = settings or TransferSettings()
    if loss not in _LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(_LOSSES)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRICS)}")
    x_train, y_train = train
    x_test, y_test = test
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError("transfer needs non-empty train and test features")
    loss_fn, metric_fn = _LOSSES[loss], METRICS[metric]
    x_train, x_test = x_train.float(), x_test.float()
    mean = std = None
    if settings.standardize:
        mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    scores = []
    for seed in settings.seeds:
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        head = nn.Linear(x_train.shape[1], num_outputs)
        opt = torch.optim.AdamW(
            head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        for _ in range(settings.epochs):
            order = torch.randperm(len(x_train), generator=generator)
            for start in range(0, len(order), settings.batch_size):
                idx = order[start : start + settings.batch_size]
                opt.zero_grad()
                loss_fn(head(x_train[idx]), y_train[idx]).backward()
                opt.step()
        with torch.no_grad():
            outputs = head(x_test)
        scores.append(metric_fn(outputs, y_test))
        if test_outputs is not None:
            test_outputs.append(outputs)
        if heads is not None:
            state = dict(head.state_dict())
            if mean is not None:
                state.update(mean=mean, std=std)
            heads.append(state)
    values = np.array(scores)
    return {
        "protocol": "dabs",
        "metric": metric,
        f"{metric}_mean": float(values.mean()),
        f"{metric}_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        f"{metric}_per_seed": [float(v) for v in values],
    }


def transfer_statistic(metric: str, outputs: np.ndarray, labels: np.ndarray) -> Statistic | None:
    """The metric of per-seed test logits ``outputs`` (S, N, K) against ``labels`` as an
    :class:`rq_core.uncertainty.Statistic` (bootstrap intervals over test items and seeds,
    paired comparisons); ``None`` for correlations (Pearson, Spearman), which are not means
    over items.

    >>> out = np.array([[[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])  # one seed, 3 items
    >>> round(transfer_statistic("accuracy", out, np.array([0, 1, 1])).value(), 3)
    0.667
    """
    outputs, labels = np.asarray(outputs, dtype=np.float64), np.asarray(labels)
    if metric == "accuracy":
        if outputs.shape[-1] == 1:  # one logit: binary (BCE) tasks
            predicted = (outputs[..., 0] > 0).astype(np.int64)
        else:
            predicted = outputs.argmax(-1)
        return accuracy_statistic(predicted == labels.astype(np.int64), labels=labels)
    if metric == "auroc":
        return auroc_statistic(1.0 / (1.0 + np.exp(-outputs)), labels)
    return None


def probe_linear_transfer(
    train: tuple[Tensor, Tensor],
    valid: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    multilabel: bool = False,
    seeds: tuple[int, ...] = (42, 43, 44),
) -> dict[str, Any]:
    """rq-core's EVAR probe (standardized features, early stopping on ``valid``)."""
    from rq_core.linear_probe import linear_probe

    result = linear_probe(train, valid, test, seeds=seeds, multilabel=multilabel)
    metric = "auroc" if multilabel else "accuracy"
    return {"protocol": "linear_probe", "metric": metric, **result}


TRANSFER_PROTOCOLS = ("dabs", "linear_probe")
