"""The regression gate's statistics, and its power and false-alarm rate on synthetic runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from edgekit.judge.regression import (
    BLOCKS,
    DEFAULT_THRESHOLD,
    block_medians,
    judge_samples,
    judge_scalar,
    mann_whitney_u,
)
from edgekit.testing.latencies import synthetic_latencies_ms


def test_exact_mann_whitney_by_hand() -> None:
    # Complete separation of 3 vs 3: U = 0, and 2 of the C(6,3) = 20 arrangements are as extreme.
    result = mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert result.u == 0 and result.method == "exact"
    assert result.p_value == pytest.approx(2 / 20)
    assert mann_whitney_u([4, 5, 6], [1, 2, 3]).u == 9


@pytest.mark.parametrize(
    ("m", "n", "shift", "ties"),
    [(10, 10, 0.8, False), (7, 12, 0.0, False), (40, 35, 0.4, False), (12, 12, 0.5, True)],
)
def test_mann_whitney_matches_scipy(m: int, n: int, shift: float, ties: bool) -> None:
    rng = np.random.default_rng(m * n)
    a, b = rng.normal(shift, 1, m), rng.normal(0, 1, n)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    ours = mann_whitney_u(a, b)
    method = "exact" if ours.method == "exact" else "asymptotic"
    reference = stats.mannwhitneyu(a, b, alternative="two-sided", method=method)
    assert ours.u == pytest.approx(float(reference.statistic))
    assert ours.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)


def test_block_medians_keep_time_order() -> None:
    samples = np.concatenate([np.full(30, 1.0), np.full(30, 2.0), np.full(40, 3.0)])
    medians = block_medians(samples, blocks=4)
    assert medians == [1.0, 2.0, 3.0, 3.0]
    with pytest.raises(ValueError, match="at least 10 samples"):
        block_medians(np.ones(5))


def test_verdicts() -> None:
    base = [10.0, 10.1, 9.9, 10.05, 9.95, 10.02, 9.98, 10.0, 10.03, 9.97]
    slower = [v * 1.08 for v in base]
    assert judge_samples("p50", base, slower).verdict == "regression"
    assert judge_samples("p50", slower, base).verdict == "improvement"
    tiny = [v * 1.01 + 0.001 for v in base]  # significant, but far below the 5% threshold
    tiny_verdict = judge_samples("p50", base, tiny)
    assert tiny_verdict.verdict == "unchanged" and "below" in tiny_verdict.reason
    assert judge_samples("p50", base[:2], slower).verdict == "insufficient-data"
    assert judge_scalar("peak_rss_bytes", 100.0, 110.0).verdict == "regression"
    assert judge_scalar("peak_rss_bytes", 100.0, 103.0).verdict == "unchanged"
    assert judge_scalar("peak_rss_bytes", None, 103.0).verdict == "insufficient-data"


def test_change_interval_is_the_one_stored_before_scipy() -> None:
    """The bootstrap of the change (scipy.stats.bootstrap, unpaired, percentile) gives, for a seed,
    the interval the hand-written resampling it replaced gave."""
    base = [10.0, 10.1, 9.9, 10.05, 9.95, 10.02, 9.98, 10.0, 10.03, 9.97]
    verdict = judge_samples("p50", base, [v * 1.08 for v in base], seed=5)
    assert verdict.change == pytest.approx(0.08)
    assert verdict.ci95 == pytest.approx((0.07460802053662755, 0.0854108216432865), rel=1e-12)


def gate_rates(slowdown: float, trials: int, run_sigma: float) -> float:
    """Share of trials the gate calls a regression: one baseline run vs one candidate run."""
    rng = np.random.default_rng(2026)
    flagged = 0
    for trial in range(trials):
        base = block_medians(synthetic_latencies_ms(rng, run_sigma=run_sigma), BLOCKS)
        cand = block_medians(synthetic_latencies_ms(rng, slowdown=slowdown, run_sigma=run_sigma), BLOCKS)
        flagged += judge_samples("p50", base, cand, seed=trial).verdict == "regression"
    return flagged / trials


def test_gate_power_and_false_alarms_on_realistic_runs() -> None:
    """Skewed bodies, drift, 1% outliers of 1.5-4x and 0.5% run-to-run variation; defaults
    (10 block medians per run, Mann-Whitney p < 0.05, 5% threshold)."""
    detection = gate_rates(DEFAULT_THRESHOLD, trials=300, run_sigma=0.005)
    false_alarms = gate_rates(0.0, trials=300, run_sigma=0.005)
    print(f"\ngate: detects a 5% slowdown in {detection:.1%} of trials, false alarms {false_alarms:.1%}")
    assert detection >= 0.95
    assert false_alarms <= 0.05


def test_the_gate_can_fail_when_runs_are_noisier_than_the_threshold() -> None:
    """Run-to-run variation of 3% per run swamps a 5% slowdown between two single runs: the
    simulation must show it (pool several runs per side instead: latest:DEVICE:MODEL:N)."""
    assert gate_rates(0.0, trials=150, run_sigma=0.03) > 0.05
