"""rq_core.uncertainty's vectorized bootstrap against a loop over resamples, side by side.

The competitor ("loop") is the textbook bootstrap: for each resample, index the per-seed
outputs with the drawn items, score every drawn seed with rq_core.probe_metrics and average.
It draws the same resamples as ours (same generators, same order), so both must give the
same interval; the script checks that and prints the time of each and their ratio.

    python benchmarks/bootstrap.py             # accuracy 1000 items x 5 seeds; mAP 500 x 8 x 5
    python benchmarks/bootstrap.py --quick     # 200 resamples, for a smoke run
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from rq_core.probe_metrics import mean_average_precision
from rq_core.uncertainty import (
    Statistic,
    accuracy_statistic,
    bootstrap_estimate,
    map_statistic,
    paired_difference,
)

LEVEL = 0.95


def loop_bootstrap(
    per_seed_metric: Callable[[int, np.ndarray], float],
    num_items: int,
    num_seeds: int,
    resamples: int,
    seed: int = 0,
) -> tuple[float, float]:
    """The percentile interval by one metric call per drawn seed and resample."""
    items = np.random.default_rng([seed, 0]).integers(0, num_items, (resamples, num_items))
    seeds = np.random.default_rng([seed, 1]).integers(0, num_seeds, (resamples, num_seeds))
    values = [
        np.mean([per_seed_metric(s, drawn) for s in drawn_seeds])
        for drawn, drawn_seeds in zip(items, seeds)
    ]
    low, high = np.percentile(values, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return float(low), float(high)


def best_of(repeats: int, call: Callable[[], object]) -> tuple[float, float, object]:
    """Best wall time, the CPU time of that run (the machine may be shared), the result."""
    best, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = call()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, result


def compare(name: str, statistic: Statistic, per_seed_metric, resamples: int) -> None:
    ours_s, ours_cpu, estimate = best_of(
        3, lambda: bootstrap_estimate(statistic, resamples=resamples)
    )
    loop_s, _, (low, high) = best_of(
        1,
        lambda: loop_bootstrap(
            per_seed_metric, statistic.num_items, statistic.num_seeds, resamples
        ),
    )
    paired_s, paired_cpu, _ = best_of(
        3, lambda: paired_difference(statistic, statistic, resamples=resamples)
    )
    gap = max(abs(estimate.low - low), abs(estimate.high - high))
    print(
        f"{name}\n  interval {estimate:.3f}: ours {ours_s * 1e3:.0f} ms "
        f"(CPU {ours_cpu * 1e3:.0f} ms), paired difference {paired_s * 1e3:.0f} ms "
        f"(CPU {paired_cpu * 1e3:.0f} ms), loop {loop_s * 1e3:.0f} ms; "
        f"loop/ours {loop_s / ours_s:.1f}x; |ours - loop| {gap:.1e}"
    )
    if gap > 1e-9:
        raise SystemExit(f"{name}: the two bootstraps disagree by {gap}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="200 resamples")
    args = parser.parse_args()
    resamples = 200 if args.quick else args.resamples
    rng = np.random.default_rng(0)
    print(f"{resamples} resamples, 95 % percentile interval; wall time best of 3 (loop: 1 run)")

    correct = rng.random((5, 1000)) < 0.9
    compare(
        "accuracy, 1000 items x 5 seeds",
        accuracy_statistic(correct),
        lambda s, drawn: float(correct[s, drawn].mean()),
        resamples,
    )

    targets = (rng.random((500, 8)) < 0.2).astype(np.float32)
    scores = targets[None] + rng.normal(scale=0.8, size=(5, 500, 8))
    compare(
        "mAP, 500 items x 8 classes x 5 seeds",
        map_statistic(scores, targets),
        lambda s, drawn: mean_average_precision(scores[s][drawn], targets[drawn]),
        resamples,
    )
    compare(
        "mAP, 500 items x 8 classes x 1 seed",
        map_statistic(scores[:1], targets),
        lambda s, drawn: mean_average_precision(scores[s][drawn], targets[drawn]),
        resamples,
    )


if __name__ == "__main__":
    main()
