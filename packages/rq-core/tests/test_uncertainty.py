import dataclasses
import json

import numpy as np
import pytest
from rq_core import uncertainty
from rq_core.probe_metrics import macro_auroc, mean_average_precision
from rq_core.runs import ResultsTable, write_results
from rq_core.uncertainty import (
    Comparison,
    Estimate,
    accuracy_statistic,
    auroc_statistic,
    bootstrap_estimate,
    map_statistic,
    mean_of,
    mean_statistic,
    miou_statistic,
    paired_difference,
)


def bernoulli(p: float, n: int, seed: int, seeds: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((seeds, n)) < p


# ------------------------------------------------------------------ the interval itself


def test_bernoulli_interval_is_close_to_the_normal_approximation():
    correct = bernoulli(0.8, 2000, seed=0)
    estimate = bootstrap_estimate(accuracy_statistic(correct), resamples=2000)
    p = correct.mean()
    half_width = 1.96 * np.sqrt(p * (1 - p) / correct.size)  # 0.0176
    assert estimate.value == pytest.approx(p, abs=1e-12)
    assert estimate.low == pytest.approx(p - half_width, abs=0.003)
    assert estimate.high == pytest.approx(p + half_width, abs=0.003)
    assert (estimate.level, estimate.resamples) == (0.95, 2000)


def test_the_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    true_p, covered = 0.7, 0
    for data_set in range(200):
        correct = bernoulli(true_p, 200, seed=1000 + data_set)
        estimate = bootstrap_estimate(accuracy_statistic(correct), resamples=400, seed=data_set)
        covered += estimate.low <= true_p <= estimate.high
    # 200 sets: the standard error of the coverage is 1.5 points; the percentile bootstrap
    # runs slightly below the nominal level at n = 200.
    assert 0.89 <= covered / 200 <= 0.99, covered


def test_identical_probe_seeds_give_the_single_seed_interval():
    one = bernoulli(0.85, 500, seed=2)
    single = bootstrap_estimate(accuracy_statistic(one))
    repeated = bootstrap_estimate(accuracy_statistic(np.repeat(one, 5, axis=0)))
    assert repeated == single


def test_probe_seeds_are_resampled_so_their_spread_widens_the_interval():
    # Every item right with seed 0 and wrong with seed 1: resampling items alone would give a
    # zero-width interval; resampling the two seeds gives 0, 0.5 or 1.
    correct = np.stack([np.ones(1000, bool), np.zeros(1000, bool)])
    estimate = bootstrap_estimate(accuracy_statistic(correct))
    assert (estimate.value, estimate.low, estimate.high) == (0.5, 0.0, 1.0)


def test_strata_are_resampled_within_themselves():
    # Fold 0 is one right item, fold 1 ninety-nine wrong ones: the mean over folds is 0.5.
    # Resampled within folds, every resample keeps fold 0's item; resampled across folds,
    # about a third of the resamples lose it and score only fold 1.
    correct = np.r_[True, np.zeros(99, bool)]
    folds = np.r_[0, np.ones(99, int)]
    statistic = accuracy_statistic(correct, strata=folds)
    stratified = bootstrap_estimate(statistic)
    assert (stratified.value, stratified.low, stratified.high) == (0.5, 0.5, 0.5)
    across = bootstrap_estimate(dataclasses.replace(statistic, strata=None))
    assert (across.value, across.low, across.high) == (0.5, 0.0, 0.5)


def test_same_seed_same_interval_other_seed_other_interval():
    statistic = accuracy_statistic(bernoulli(0.6, 300, seed=3, seeds=3))
    assert bootstrap_estimate(statistic, seed=7) == bootstrap_estimate(statistic, seed=7)
    assert bootstrap_estimate(statistic, seed=7) != bootstrap_estimate(statistic, seed=8)


def test_chunked_resampling_draws_the_same_resamples(monkeypatch):
    statistic = accuracy_statistic(bernoulli(0.6, 300, seed=4, seeds=3))
    whole = bootstrap_estimate(statistic, resamples=500)
    monkeypatch.setattr(uncertainty, "_CHUNK_CELLS", 300 * 7)  # chunks of 7 resamples
    assert bootstrap_estimate(statistic, resamples=500) == whole


# ------------------------------------------------------------------ statistics = metrics


def _counts(indices: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(indices, minlength=size).astype(float)[None]


@pytest.mark.parametrize("seed", range(6))
def test_weighted_statistics_equal_the_metrics_of_the_written_out_resample(seed):
    """A resample given as counts scores exactly as the resampled set with its repeats
    (which makes many tied scores), for every statistic, with seeds drawn too."""
    rng = np.random.default_rng(seed)
    num_seeds, n, c = 3, 60, 4
    # Integer scores in half the cases: ties within a class, not only between repeats.
    scores = (
        rng.integers(0, 5, (num_seeds, n, c)).astype(float)
        if seed % 2
        else rng.random((num_seeds, n, c))
    )
    targets = (rng.random((n, c)) < 0.3).astype(np.float32)
    targets[:2] = [[1, 0, 1, 0], [0, 1, 0, 1]]
    ious = rng.random((num_seeds, n))
    categories = rng.integers(0, 5, n)
    items = rng.integers(0, n, n)
    drawn_seeds = rng.integers(0, num_seeds, num_seeds)
    item_counts, seed_counts = _counts(items, n), _counts(drawn_seeds, num_seeds)

    def mean_over_drawn_seeds(metric):
        return np.mean([metric(s) for s in drawn_seeds])

    expected = {
        "map": mean_over_drawn_seeds(
            lambda s: mean_average_precision(scores[s][items], targets[items])
        ),
        "auroc": mean_over_drawn_seeds(lambda s: macro_auroc(scores[s][items], targets[items])),
        "instance": mean_over_drawn_seeds(lambda s: ious[s][items].mean()),
        "class": mean_over_drawn_seeds(
            lambda s: np.mean(
                [ious[s][items][categories[items] == k].mean() for k in set(categories[items])]
            )
        ),
    }
    got = {
        "map": map_statistic(scores, targets),
        "auroc": auroc_statistic(scores, targets),
        "instance": miou_statistic(ious, categories, average="instance"),
        "class": miou_statistic(ious, categories, average="class"),
    }
    for name, statistic in got.items():
        value = statistic.evaluate(item_counts, seed_counts)[0]
        assert value == pytest.approx(expected[name], abs=1e-12), name


def test_full_set_values_equal_the_probe_metrics_mean_over_seeds():
    rng = np.random.default_rng(10)
    scores, targets = rng.random((4, 80, 3)), (rng.random((80, 3)) < 0.4).astype(float)
    assert map_statistic(scores, targets).value() == pytest.approx(
        np.mean([mean_average_precision(s, targets) for s in scores]), abs=1e-12
    )
    assert auroc_statistic(scores, targets).value() == pytest.approx(
        np.mean([macro_auroc(s, targets) for s in scores]), abs=1e-12
    )


def test_miou_statistics_equal_part_iou_aggregation_on_the_full_set():
    """C.mIoU is the mean over categories of their shapes' mean IoU, I.mIoU the mean over
    shapes (rq_points.evaluate.part_iou); averaged over probe seeds."""
    rng = np.random.default_rng(11)
    ious, categories = rng.random((3, 63)), rng.integers(0, 6, 63)
    per_seed_class = [
        np.mean([row[categories == k].mean() for k in np.unique(categories)]) for row in ious
    ]
    assert miou_statistic(ious, categories, average="class").value() == pytest.approx(
        np.mean(per_seed_class), abs=1e-12
    )
    assert miou_statistic(ious, categories, average="instance").value() == pytest.approx(
        ious.mean(), abs=1e-12
    )


def test_multilabel_statistics_with_strata_average_over_strata():
    rng = np.random.default_rng(12)
    scores, targets = rng.random((2, 90, 3)), (rng.random((90, 3)) < 0.5).astype(float)
    folds = np.arange(90) % 3
    expected = np.mean(
        [
            [mean_average_precision(s[folds == f], targets[folds == f]) for f in range(3)]
            for s in scores
        ]
    )
    statistic = map_statistic(scores, targets, strata=folds)
    assert statistic.value() == pytest.approx(expected, abs=1e-12)
    estimate = bootstrap_estimate(statistic, resamples=200)
    assert estimate.low <= estimate.value <= estimate.high


def test_mean_statistic_with_strata_is_the_mean_of_stratum_means():
    values = np.array([[1.0, 0.0, 0.0, 0.0, 1.0]])
    assert mean_statistic(values, strata=np.array([0, 1, 1, 1, 1])).value() == pytest.approx(
        (1.0 + 0.25) / 2
    )


def test_mean_of_tasks_resamples_each_task_within_itself():
    # Task A: one right item; task B: 99 wrong ones. The mean over tasks is 0.5 on every
    # resample, because each task keeps its own items.
    one_right = accuracy_statistic(np.ones(1, bool))
    all_wrong = accuracy_statistic(np.zeros(99, bool))
    average = mean_of([one_right, all_wrong])
    estimate = bootstrap_estimate(average)
    # Resampled across tasks, task A would be left empty (undefined) a third of the time.
    assert (estimate.value, estimate.low, estimate.high, estimate.resamples) == (
        0.5,
        0.5,
        0.5,
        1000,
    )


def test_mean_of_independent_tasks_is_narrower_than_each_task():
    tasks = [accuracy_statistic(bernoulli(0.8, 400, seed=s, seeds=3)) for s in (30, 31, 32, 33)]
    widths = [bootstrap_estimate(t).high - bootstrap_estimate(t).low for t in tasks]
    average = bootstrap_estimate(mean_of(tasks))
    assert average.value == pytest.approx(np.mean([t.value() for t in tasks]), abs=1e-12)
    # Four independent test sets: about half the width of one.
    assert 0.35 < (average.high - average.low) / np.mean(widths) < 0.7


def test_mean_of_tasks_pairs_part_by_part():
    rng = np.random.default_rng(34)
    labels = [np.arange(200) % 4, np.arange(300) % 3]
    rq = [accuracy_statistic(rng.random((3, len(y))) < 0.9, labels=y) for y in labels]
    base = [accuracy_statistic(rng.random((3, len(y))) < 0.7, labels=y) for y in labels]
    assert paired_difference(mean_of(rq), mean_of(base)).verdict == "better"
    assert paired_difference(mean_of(rq), mean_of(rq)).high == 0.0
    swapped = [accuracy_statistic(np.ones((3, 200), bool), labels=labels[0][::-1]), base[1]]
    with pytest.raises(ValueError, match="part 0 of mean of accuracy, accuracy: .*labels"):
        paired_difference(mean_of(rq), mean_of(swapped))
    with pytest.raises(ValueError, match="different numbers of seeds"):
        mean_of([rq[0], accuracy_statistic(np.ones(10, bool))])


# ------------------------------------------------------------------ paired differences


def test_identical_predictions_differ_by_exactly_zero():
    correct = bernoulli(0.7, 400, seed=20, seeds=3)
    labels = np.arange(400) % 5
    a = accuracy_statistic(correct, labels=labels)
    b = accuracy_statistic(correct.copy(), labels=labels.copy())
    comparison = paired_difference(a, b)
    assert (comparison.difference, comparison.low, comparison.high) == (0.0, 0.0, 0.0)
    assert comparison.verdict == "no clear difference"
    assert str(comparison.scaled(100)) == "+0.0 [+0.0, +0.0] no clear difference"


def test_a_clearly_better_method_is_better_and_the_reverse_worse():
    truth = np.random.default_rng(21).random((3, 500))
    better, weaker = truth < 0.95, truth < 0.80  # the better one is right wherever the other is
    assert paired_difference(accuracy_statistic(better), accuracy_statistic(weaker)).verdict == (
        "better"
    )
    assert paired_difference(accuracy_statistic(weaker), accuracy_statistic(better)).verdict == (
        "worse"
    )


def test_pairing_finds_a_small_consistent_gain_that_separate_intervals_cannot():
    # b is right on 85 % of 1000 items; a fixes 20 of b's errors and breaks nothing.
    b = np.arange(1000) >= 150
    a = b.copy()
    a[:20] = True
    separate_a = bootstrap_estimate(accuracy_statistic(a))
    separate_b = bootstrap_estimate(accuracy_statistic(b))
    assert separate_a.low < separate_b.high, "the separate intervals overlap"
    comparison = paired_difference(accuracy_statistic(a), accuracy_statistic(b))
    assert comparison.difference == pytest.approx(0.02)
    assert 0 < comparison.low < 0.02 < comparison.high < 0.04
    assert comparison.verdict == "better"


def test_paired_resamples_are_each_methods_own_bootstrap_resamples():
    a = accuracy_statistic(bernoulli(0.8, 300, seed=22, seeds=3))
    b = accuracy_statistic(bernoulli(0.8, 300, seed=23, seeds=5))  # other seed count
    zero = accuracy_statistic(np.zeros((1, 300), bool))
    assert paired_difference(a, zero).low == pytest.approx(bootstrap_estimate(a).low, abs=1e-12)
    assert paired_difference(a, b).verdict == "no clear difference"


@pytest.mark.parametrize(
    ("b", "message"),
    [
        (accuracy_statistic(np.ones(99, bool)), r"different test sets \(100 vs 99 items\)"),
        (
            accuracy_statistic(np.ones(100, bool), labels=np.r_[1, np.arange(99) % 3]),
            "different labels .1 items differ, first at index 0",
        ),
        (mean_statistic(np.ones(100)), "cannot pair 'accuracy' with 'mean'"),
        (
            accuracy_statistic(np.ones(100, bool), strata=np.arange(100) % 2),
            "different folds",
        ),
    ],
)
def test_methods_scored_on_different_test_items_are_refused(b, message):
    a = accuracy_statistic(np.ones(100, bool), labels=np.r_[0, np.arange(99) % 3])
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b)


def test_multilabel_targets_must_match_too():
    rng = np.random.default_rng(24)
    scores, targets = rng.random((50, 3)), (rng.random((50, 3)) < 0.5).astype(float)
    other = targets.copy()
    other[7, 1] = 1 - other[7, 1]
    with pytest.raises(ValueError, match="first at index 7"):
        paired_difference(map_statistic(scores, targets), map_statistic(scores, other))


# ------------------------------------------------------------------ cells and inputs


def test_cells_print_and_serialize():
    estimate = Estimate(0.9304, 0.912, 0.945, 0.95, 1000).scaled(100)
    comparison = Comparison(-0.019, -0.033, -0.004, 0.95, 1000).scaled(100)
    assert str(estimate) == "93.0 [91.2, 94.5]"
    assert f"{estimate:.2f}" == "93.04 [91.20, 94.50]"
    assert str(comparison) == "-1.9 [-3.3, -0.4] worse"
    assert f"{comparison:.2f}" == "-1.90 [-3.30, -0.40] worse"
    assert comparison.to_json() == {
        "difference": -1.9,
        "low": -3.3,
        "high": -0.4,
        "level": 0.95,
        "resamples": 1000,
        "verdict": "worse",
    }
    with pytest.raises(ValueError, match="> 0"):
        estimate.scaled(-1)


def test_results_tables_write_the_interval_cells(tmp_path):
    table = ResultsTable("Linear probe", ["method", "keyword", "vs random"])
    table.add(
        method="rq",
        keyword=Estimate(93.0, 91.2, 94.5, 0.95, 1000),
        **{"vs random": Comparison(1.9, 0.4, 3.3, 0.95, 1000)},
    )
    json_path, md_path = write_results(tmp_path, table)
    assert "| rq | 93.0 [91.2, 94.5] | +1.9 [+0.4, +3.3] better |" in md_path.read_text()
    row = json.loads(json_path.read_text())["tables"][0]["rows"][0]
    assert row["keyword"] == {
        "value": 93.0,
        "low": 91.2,
        "high": 94.5,
        "level": 0.95,
        "resamples": 1000,
    }
    assert row["vs random"]["verdict"] == "better"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy_statistic(np.ones((2, 3, 4))), r"expected \(seeds, items\)"),
        (lambda: mean_statistic(np.array([0.5, np.nan])), "NaN"),
        (lambda: miou_statistic(np.ones(4), np.zeros(3), average="class"), r"class_ids"),
        (lambda: miou_statistic(np.ones(4), np.zeros(4), average="shape"), "average must be"),
        (lambda: map_statistic(np.ones((4, 2)), np.ones((4, 3))), r"\(seeds, N, C\)"),
        (lambda: accuracy_statistic(np.ones(4, bool), labels=np.ones(3)), "3 rows for 4 items"),
        (lambda: bootstrap_estimate(accuracy_statistic(np.ones(4)), resamples=0), "resamples"),
        (lambda: bootstrap_estimate(accuracy_statistic(np.ones(4)), level=95), "level"),
        (
            lambda: bootstrap_estimate(map_statistic(np.ones((4, 2)), np.zeros((4, 2)))),
            "undefined on the full test set",
        ),
    ],
)
def test_bad_inputs_raise_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------ compare_methods


def test_compare_methods_pairs_each_method_with_random_and_the_baseline_once():
    from rq_core.uncertainty import compare_methods

    truth = np.arange(400) % 4 != 0
    stats = {
        "random": {"a": accuracy_statistic(truth & (np.arange(400) % 3 != 0))},
        "mixup": {"a": accuracy_statistic(truth)},
        "rq": {"a": accuracy_statistic(truth | (np.arange(400) % 8 == 0))},
    }
    estimates, paired = compare_methods("t", stats, baseline="mixup", resamples=200)
    assert [r["method"] for r in estimates.rows] == ["random", "mixup", "rq"]
    assert estimates.rows[2]["a"].value == pytest.approx(87.5)
    pairs = [(r["method"], r["against"]) for r in paired.rows]
    # random vs baseline appears once (as baseline vs random), never twice, never self-pairs
    assert pairs == [("mixup", "random"), ("rq", "random"), ("rq", "mixup")]
    verdicts = {(r["method"], r["against"]): r["verdict"] for r in paired.rows}
    assert verdicts[("rq", "mixup")] == "better"  # rq is right on every item mixup is, +12.5
    assert paired.rows[2]["difference"].difference == pytest.approx(12.5)
    json = paired.to_json()["rows"][2]["difference"]
    assert json["verdict"] == "better"
    # the verdict has its own column: the difference cell shows the numbers only, once
    line = [row for row in paired.markdown().splitlines() if row.startswith("| rq | mixup")][0]
    assert line.count("better") == 1 and "+12.5 [" in line, line


def test_compare_methods_names_the_column_of_mismatched_test_items():
    from rq_core.uncertainty import compare_methods

    stats = {
        "random": {"keyword": accuracy_statistic(np.ones(50, bool), labels=np.zeros(50))},
        "rq": {"keyword": accuracy_statistic(np.ones(60, bool), labels=np.zeros(60))},
    }
    with pytest.raises(ValueError, match="keyword, rq vs random: .*different test sets"):
        compare_methods("t", stats, resamples=50)
