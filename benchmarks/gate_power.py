"""Power and false-alarm rate of the regression gate on synthetic board-like latency runs.

    python benchmarks/gate_power.py [--trials 300]

For each run-to-run variation and number of runs pooled per side: the share of trials in which
a 5% slowdown is flagged (goal >= 95%) and in which an identical model is flagged (goal <= 5%).
The synthetic runs (edgekit.testing.models.synthetic_latencies_ms) have a log-normal body, AR(1) drift,
1% outliers of 1.5-4x and a per-run offset; the gate uses its defaults.
"""

from __future__ import annotations

import argparse

import numpy as np

from edgekit.judge.regression import BLOCKS, DEFAULT_THRESHOLD, block_medians, judge_samples
from edgekit.testing.latencies import synthetic_latencies_ms


def flagged_share(slowdown: float, trials: int, run_sigma: float, runs_per_side: int, seed: int) -> float:
    rng = np.random.default_rng(seed)

    def side(factor: float) -> list[float]:
        return [
            median
            for _ in range(runs_per_side)
            for median in block_medians(
                synthetic_latencies_ms(rng, slowdown=factor, run_sigma=run_sigma), BLOCKS
            )
        ]

    hits = sum(
        judge_samples("p50", side(0.0), side(slowdown), seed=t).verdict == "regression" for t in range(trials)
    )
    return hits / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    print("run-to-run  runs/side  detects 5% slowdown  false alarms")
    for run_sigma in (0.005, 0.01, 0.02):
        for runs in (1, 3):
            detection = flagged_share(DEFAULT_THRESHOLD, args.trials, run_sigma, runs, args.seed)
            false_alarms = flagged_share(0.0, args.trials, run_sigma, runs, args.seed + 1)
            print(f"{run_sigma:>10.1%}  {runs:>9}  {detection:>19.1%}  {false_alarms:>12.1%}")


if __name__ == "__main__":
    main()
