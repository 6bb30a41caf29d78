import numpy as np
import pytest
import torch
from rq_core.linear_probe import ProbeSettings, linear_probe, linear_probe_folds

FAST = ProbeSettings(lr=0.05, max_epochs=30, patience=10)


def blobs(num_per_class: int, num_classes: int, dim: int, seed: int, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_classes, dim)) * 3
    labels = np.repeat(np.arange(num_classes), num_per_class)
    features = centers[labels] + spread * rng.normal(size=(len(labels), dim))
    order = rng.permutation(len(labels))
    return features[order].astype(np.float32), labels[order]


def splits(features, labels):
    n = len(labels)
    a, b = int(0.6 * n), int(0.8 * n)
    return (features[:a], labels[:a]), (features[a:b], labels[a:b]), (features[b:], labels[b:])


def test_separable_blobs_reach_full_accuracy_on_every_seed():
    features, labels = blobs(60, 4, 8, seed=0)
    result = linear_probe(*splits(features, labels), settings=FAST)
    assert result["seeds"] == [42, 43, 44]
    assert result["accuracy_per_seed"] == [1.0, 1.0, 1.0]
    assert result["accuracy_mean"] == 1.0 and result["accuracy_std"] == 0.0
    assert result["num_classes"] == 4 and result["num_test"] == 48


def test_shuffled_labels_give_chance_accuracy():
    features, labels = blobs(150, 4, 8, seed=1)
    shuffled = np.random.default_rng(0).permutation(labels)
    result = linear_probe(*splits(features, shuffled), settings=FAST)
    assert abs(result["accuracy_mean"] - 0.25) < 0.1, result["accuracy_per_seed"]


def test_standardization_uses_the_training_split_and_handles_huge_scales():
    features, labels = blobs(50, 3, 6, seed=2)
    scaled = features * 1e4 + 5e5  # unusable without standardization at this lr
    result = linear_probe(*splits(scaled, labels), seeds=(42,), settings=FAST)
    assert result["accuracy_mean"] == 1.0


def test_seeds_change_the_run_and_repeat_exactly():
    features, labels = blobs(40, 3, 6, seed=3, spread=2.5)
    data = splits(features, labels)
    a = linear_probe(*data, seeds=(42, 43), settings=FAST)
    b = linear_probe(*data, seeds=(42, 43), settings=FAST)
    assert a == b
    assert a["accuracy_per_seed"][0] != a["accuracy_per_seed"][1] or (
        a["best_epoch_per_seed"][0] != a["best_epoch_per_seed"][1]
    ), "different seeds give different runs"


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    # Validation labels are the training labels flipped: validation accuracy is best early
    # and falls as the probe learns, so the best epoch is early and training stops.
    features, labels = blobs(40, 2, 4, seed=4, spread=1.5)
    settings = ProbeSettings(lr=0.01, max_epochs=200, patience=5)
    result = linear_probe(
        (features, labels),
        (features, 1 - labels),
        (features, labels),
        seeds=(42,),
        settings=settings,
    )
    best_epoch = int(result["best_epoch_mean"])
    assert best_epoch < 20
    # The test score is that of the best epoch's weights: training for exactly that many
    # epochs (same seed, same batches) scores the same, and training on scores better.
    stopped_there = ProbeSettings(lr=0.01, max_epochs=best_epoch, patience=5)
    reference = linear_probe(
        (features, labels),
        (features, 1 - labels),
        (features, labels),
        seeds=(42,),
        settings=stopped_there,
    )
    assert result["accuracy_mean"] == reference["accuracy_mean"]
    trained_on = linear_probe(
        (features, labels), (features, labels), (features, labels), seeds=(42,), settings=FAST
    )
    assert trained_on["accuracy_mean"] > result["accuracy_mean"]


def test_accepts_torch_tensors_and_string_labels():
    features, labels = blobs(30, 2, 4, seed=5)
    names = np.array(["dog", "cat"])[labels]
    (xa, ya), (xb, yb), (xc, yc) = splits(torch.from_numpy(features), names)
    result = linear_probe((xa, ya), (xb, yb), (xc, yc), seeds=(42,), settings=FAST)
    assert result["accuracy_mean"] == 1.0


def test_multilabel_reports_map_and_auroc():
    rng = np.random.default_rng(6)
    features = rng.normal(size=(300, 5)).astype(np.float32)
    targets = np.stack(
        [features[:, 0] > 0, features[:, 1] > 0.5, features[:, 2] < 0], axis=1
    ).astype(np.float32)
    result = linear_probe(*splits(features, targets), multilabel=True, seeds=(42,), settings=FAST)
    assert result["map_mean"] > 0.95 and result["auroc_mean"] > 0.97
    assert "accuracy_mean" not in result
    noise = linear_probe(
        *splits(features, rng.permutation(targets)), multilabel=True, seeds=(42,), settings=FAST
    )
    assert abs(noise["auroc_mean"] - 0.5) < 0.15


def test_leave_one_fold_out():
    features, labels = blobs(20, 3, 6, seed=7)
    folds = np.arange(len(labels)) % 3
    result = linear_probe_folds(features, labels, folds, seeds=(42,), settings=FAST)
    assert result["folds"] == [0, 1, 2]
    assert result["accuracy_per_fold"] == [1.0] * 3 and result["accuracy_mean"] == 1.0
    # Shuffled labels: chance level on the held-out folds.
    shuffled = np.random.default_rng(1).permutation(labels)
    chance = linear_probe_folds(features, shuffled, folds, seeds=(42,), settings=FAST)
    assert chance["accuracy_mean"] < 0.6


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x, y: linear_probe((x, y), (x, y), (x[:, :3], y)), "feature dimensions differ"),
        (
            lambda x, y: linear_probe((x, y), (x, y + 7), (x, y)),
            "do not occur in the training split",
        ),
        (lambda x, y: linear_probe((x, y[:-1]), (x, y), (x, y)), "feature rows but"),
        (lambda x, y: linear_probe((x, np.zeros_like(y)), (x, y), (x, y)), "single class"),
        (lambda x, y: linear_probe((x * np.nan, y), (x, y), (x, y)), "NaN"),
        (lambda x, y: linear_probe((x, y), (x, y), (x, y), multilabel=True), r"\(N, C\)"),
        (lambda x, y: linear_probe_folds(x, y, np.zeros(len(y))), ">= 2 folds"),
    ],
)
def test_bad_inputs_raise_naming_the_problem(call, message):
    features, labels = blobs(5, 2, 4, seed=8)
    with pytest.raises(ValueError, match=message):
        call(features, labels)


# ------------------------------------------------------------------ per-item predictions


def test_predictions_are_returned_only_when_asked_and_leave_the_summary_unchanged():
    features, labels = blobs(40, 3, 6, seed=9, spread=2.5)
    data = splits(features, labels)
    plain = linear_probe(*data, seeds=(42, 43), settings=FAST)
    result = linear_probe(*data, seeds=(42, 43), settings=FAST, return_predictions=True)
    assert "predictions" not in plain
    predictions = result.pop("predictions")
    assert result == plain
    assert (
        predictions
        == linear_probe(*data, seeds=(42, 43), settings=FAST, return_predictions=True)[
            "predictions"
        ]
    )


def test_single_label_predictions_give_each_seeds_accuracy():
    features, labels = blobs(40, 3, 6, seed=9, spread=4.0)
    names = np.array(["bird", "cat", "dog"])[labels]
    data = splits(features, names)
    result = linear_probe(*data, seeds=(42, 43, 44), settings=FAST, return_predictions=True)
    predictions = result["predictions"]
    test_names = data[2][1]
    assert predictions.seeds == (42, 43, 44)
    assert predictions.predicted.shape == (3, len(test_names)) and predictions.scores is None
    assert (predictions.classes[predictions.targets] == test_names).all()
    assert predictions.correct.mean(axis=1).tolist() == result["accuracy_per_seed"]
    assert min(result["accuracy_per_seed"]) < 1.0, "a test with errors to count"
    statistic = predictions.statistic()
    assert statistic.value() == pytest.approx(result["accuracy_mean"], abs=1e-12)
    assert (statistic.labels == predictions.targets).all() and statistic.num_seeds == 3
    with pytest.raises(ValueError, match="not available for a single-label probe"):
        predictions.statistic("map")


def test_multilabel_predictions_give_map_and_auroc():
    rng = np.random.default_rng(6)
    features = rng.normal(size=(300, 5)).astype(np.float32)
    targets = np.stack(
        [features[:, 0] > 0, features[:, 1] > 0.5, features[:, 2] + rng.normal(size=300) < 0],
        axis=1,
    ).astype(np.float32)
    result = linear_probe(
        *splits(features, targets),
        multilabel=True,
        seeds=(42, 43),
        settings=FAST,
        return_predictions=True,
    )
    predictions = result["predictions"]
    assert predictions.scores.shape == (2, 60, 3) and predictions.predicted is None
    assert (predictions.targets == targets[240:]).all()
    for metric in ("map", "auroc"):
        value = predictions.statistic(metric).value()
        assert value == pytest.approx(result[f"{metric}_mean"], abs=1e-12), metric
    with pytest.raises(ValueError, match="choose from"):
        predictions.statistic()


def test_leave_one_fold_out_predictions_cover_every_item_once_per_seed():
    features, labels = blobs(30, 3, 6, seed=10, spread=2.5)
    folds = np.r_[np.zeros(20), np.ones(30), np.full(40, 2)]  # unequal folds: mean of folds
    result = linear_probe_folds(
        features, labels, folds, seeds=(42, 43), settings=FAST, return_predictions=True
    )
    predictions = result["predictions"]
    assert predictions.predicted.shape == (2, 90)
    assert (predictions.targets == labels).all() and (predictions.folds == folds).all()
    per_fold = [predictions.correct[:, folds == f].mean() for f in range(3)]
    assert per_fold == pytest.approx(result["accuracy_per_fold"], abs=1e-12)
    pooled = predictions.correct.mean()
    statistic = predictions.statistic()
    assert statistic.value() == pytest.approx(result["accuracy_mean"], abs=1e-12)
    assert statistic.value() != pytest.approx(pooled), "folds are averaged, not pooled"
    assert (statistic.strata == folds).all()


def test_leave_one_fold_out_predictions_name_string_labels():
    features, labels = blobs(20, 3, 6, seed=11)
    names = np.array(["a", "b", "c"])[labels]
    folds = np.arange(60) % 2
    result = linear_probe_folds(
        features, names, folds, seeds=(42,), settings=FAST, return_predictions=True
    )
    predictions = result["predictions"]
    assert predictions.classes.tolist() == ["a", "b", "c"]
    assert (predictions.classes[predictions.predicted[0]] == names).all()  # separable
