import numpy as np
import pytest
import torch
from rq_dabs.evaluate import (
    METRICS,
    TransferSettings,
    dabs_linear_transfer,
    extract_features,
    transfer_statistic,
)


def _separable(n=300, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 8, generator=g) * 0.3
    x[torch.arange(n), y] += 2.0
    return x, y


def test_linear_head_learns_a_separable_problem_and_reports_every_seed():
    x, y = _separable()
    r = dabs_linear_transfer(
        (x[:200], y[:200]),
        (x[200:], y[200:]),
        num_outputs=3,
        settings=TransferSettings(epochs=40, lr=1e-2, seeds=(0, 1)),
    )
    assert r["accuracy_mean"] > 0.9 and len(r["accuracy_per_seed"]) == 2


def test_standardize_uses_train_statistics_only():
    x, y = _separable()
    x = x * 7 + 3
    x[200:] += 1.0  # a shifted test set: its own statistics would undo the shift
    mean, std = x[:200].mean(0), x[:200].std(0)
    by_hand = dabs_linear_transfer(
        ((x[:200] - mean) / std, y[:200]),
        ((x[200:] - mean) / std, y[200:]),
        num_outputs=3,
        settings=TransferSettings(epochs=3, lr=1e-2, seeds=(0,)),
    )
    built_in = dabs_linear_transfer(
        (x[:200], y[:200]),
        (x[200:], y[200:]),
        num_outputs=3,
        settings=TransferSettings(epochs=3, lr=1e-2, seeds=(0,), standardize=True),
    )
    assert built_in["accuracy_per_seed"] == pytest.approx(by_hand["accuracy_per_seed"], abs=1e-6)


def test_multilabel_auroc_and_regression_metrics():
    x, _ = _separable()
    labels = torch.stack([(x[:, 0] > 1).long(), (x[:, 1] > 1).long()], 1)
    r = dabs_linear_transfer(
        (x[:200], labels[:200]),
        (x[200:], labels[200:]),
        num_outputs=2,
        loss="binary_cross_entropy",
        metric="auroc",
        settings=TransferSettings(epochs=30, lr=1e-2, seeds=(0,)),
    )
    assert r["auroc_mean"] > 0.9
    target = x[:, 0] * 2 + 1
    r = dabs_linear_transfer(
        (x[:200], target[:200]),
        (x[200:], target[200:]),
        num_outputs=1,
        loss="mse",
        metric="pearson",
        settings=TransferSettings(epochs=40, lr=1e-2, seeds=(0,)),
    )
    assert r["pearson_mean"] > 0.95
    assert METRICS["pearson"](
        torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([3.0, 2.0, 1.0])
    ) == pytest.approx(-1.0)


def test_binary_accuracy_thresholds_a_single_logit():
    assert METRICS["accuracy"](
        torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([1, 0, 0])
    ) == pytest.approx(2 / 3)


def test_bad_names_raise():
    x, y = _separable()
    with pytest.raises(ValueError, match="unknown loss"):
        dabs_linear_transfer((x, y), (x, y), num_outputs=3, loss="hinge")
    with pytest.raises(ValueError, match="unknown metric"):
        dabs_linear_transfer((x, y), (x, y), num_outputs=3, metric="f1")


def test_features_are_the_pooled_eval_mode_outputs(sensor_model):
    from torch.utils.data import TensorDataset

    xs = torch.randn(5, 20, 3)
    ds = TensorDataset(torch.arange(5), xs, torch.zeros(5, dtype=torch.long))
    sensor_model.train()
    feats, labels = extract_features(sensor_model, ds, batch_size=2)
    assert sensor_model.training  # restored
    sensor_model.eval()
    assert torch.allclose(feats, sensor_model([xs], prehead=True), atol=1e-5)
    assert labels.tolist() == [0] * 5


def test_per_seed_test_logits_give_the_reported_metric_with_intervals():
    """Issue 15: the transfer keeps each seed's test logits, so results carry bootstrap
    intervals and paired comparisons on the same test items."""
    x, y = _separable()
    outputs: list = []
    r = dabs_linear_transfer(
        (x[:200], y[:200]),
        (x[200:], y[200:]),
        num_outputs=3,
        settings=TransferSettings(epochs=5, lr=1e-2, seeds=(0, 1)),
        test_outputs=outputs,
    )
    assert [o.shape for o in outputs] == [(100, 3), (100, 3)]
    statistic = transfer_statistic("accuracy", np.stack(outputs), y[200:].numpy())
    assert (statistic.num_items, statistic.num_seeds) == (100, 2)
    assert statistic.value() == pytest.approx(r["accuracy_mean"])
    # one logit (BCE tasks): thresholded at 0, as METRICS["accuracy"]
    single = transfer_statistic("accuracy", np.array([[[2.0], [-1.0], [0.5]]]), np.array([1, 0, 0]))
    assert single.value() == pytest.approx(2 / 3)
    targets = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = np.where(targets == 1, 3.0, -3.0)[None]  # logits ranking every item right
    assert transfer_statistic("auroc", scores, targets).value() == pytest.approx(1.0)
    assert transfer_statistic("pearson", scores[..., :1], targets[:, 0]) is None
