"""The A/B gate's statistics (edgekit.judge.paired) on simulated log-ratios with known shifts and
on exact small-n cases worked by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binom, wilcoxon

from edgekit.judge.paired import (
    critical_rank,
    hodges_lehmann,
    judge_paired,
    look_schedule,
    nominal_levels,
    obrien_fleming_spending,
    walsh_averages,
)


def test_signed_rank_critical_values_match_the_tables() -> None:
    # Hollander & Wolfe's table: n=10, two-sided 0.05 -> reject when T+ <= 8, so C = 9
    # (P(T+ <= 8) = 25/1024); n=6 -> C = 1 (P(T+ = 0) = 1/64); n=5 -> no 95% interval.
    assert critical_rank(np.arange(1.0, 11.0), 0.05) == 9
    assert critical_rank(np.arange(1.0, 7.0), 0.05) == 1
    assert critical_rank(np.arange(1.0, 6.0), 0.05) == 0


def test_signed_rank_distribution_is_counted_exactly() -> None:
    # brute force over all 2^n sign patterns for n = 8
    n = 8
    sums = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s)
            for signs in itertools.product((0, 1), repeat=n)]  # fmt: skip
    t = 5
    p = sum(1 for s in sums if s <= t) / 2**n
    from edgekit.judge.paired import _signed_rank_cdf

    assert _signed_rank_cdf(n)[t] == pytest.approx(p, abs=1e-15)


def test_hodges_lehmann_small_case_by_hand() -> None:
    x = np.array([-0.1, 0.2, 0.3, 0.5, 0.9, 1.4])
    walsh = walsh_averages(x)
    assert walsh.size == 21
    est = hodges_lehmann(x)
    assert est.estimate == pytest.approx(float(np.median(walsh)))
    # n=6 at 95%: C=1, the interval is [min, max] of the Walsh averages
    assert (est.low, est.high) == (pytest.approx(-0.1), pytest.approx(1.4))
    assert est.p_value == pytest.approx(wilcoxon(x).pvalue)


def test_interval_and_test_agree() -> None:
    """0 lies outside the 95% interval exactly when the exact signed-rank p < 0.05."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        x = rng.normal(rng.uniform(-0.5, 0.5), 1.0, size=int(rng.integers(6, 25)))
        est = hodges_lehmann(x)
        p = wilcoxon(x, method="exact").pvalue
        excludes_zero = est.low > 0 or est.high < 0
        assert excludes_zero == (p < 0.05), (x, est, p)


@pytest.mark.parametrize("n", [12, 80])  # exact and normal-approximation paths
def test_coverage_is_about_95_percent(n: int) -> None:
    rng = np.random.default_rng(n)
    seeds = 600
    shift = 0.03
    covered = 0
    for _ in range(seeds):
        x = shift + rng.standard_t(4, size=n) * 0.02  # heavy-tailed, symmetric
        est = hodges_lehmann(x)
        covered += est.low <= shift <= est.high
    # 95% nominal (>= 95% for the exact interval); binomial 99.9% margin for 600 trials
    low = binom.ppf(0.0005, seeds, 0.95) / seeds
    assert low <= covered / seeds <= 0.99


def test_spending_function_and_levels() -> None:
    assert obrien_fleming_spending(1.0) == pytest.approx(0.05)
    assert obrien_fleming_spending(0.25) == pytest.approx(2 - 2 * 0.9999557, abs=2e-6)
    assert nominal_levels((1.0,)) == (pytest.approx(0.05),)
    levels = nominal_levels((0.25, 0.5, 0.75, 1.0))
    assert levels[0] == pytest.approx(obrien_fleming_spending(0.25), rel=1e-3)  # first look: all it spends
    assert all(a < b for a, b in itertools.pairwise(levels)) and levels[-1] < 0.05
    # Monte Carlo of the Brownian motion the boundaries are built on: the overall level is 0.05
    rng = np.random.default_rng(0)
    t = np.array([0.25, 0.5, 0.75, 1.0])
    paths = np.cumsum(rng.normal(size=(400_000, 4)) * np.sqrt(np.diff(t, prepend=0.0)), axis=1)
    from scipy.stats import norm

    bounds = norm.isf(np.array(levels) / 2) * np.sqrt(t)
    crossed = np.any(np.abs(paths) >= bounds, axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=0.002)


def test_look_schedule() -> None:
    assert look_schedule(20, 4) == [5, 10, 15, 20]
    assert look_schedule(10, 3) == [4, 7, 10]
    assert look_schedule(2, 4) == [1, 2]


def _false_alarms(noise: float, n: int, trials: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(trials):
        x = rng.normal(0.0, noise, size=n)
        flagged += judge_paired("latency_p50_ms", x).verdict.verdict == "regression"
    return flagged / trials


@pytest.mark.parametrize("noise", [0.01, 0.05])
def test_false_alarms_at_most_5_percent(noise: float) -> None:
    # noise of 1% or 5% per round pair, no shift: regressions are flagged at most alpha/2 of the
    # time (one-sided); 0.05 leaves a margin above the binomial noise of 400 trials.
    assert _false_alarms(noise, 20, 400, 11) <= 0.05


def test_power_for_a_10_percent_shift() -> None:
    rng = np.random.default_rng(5)
    caught = 0
    trials = 200
    for _ in range(trials):
        x = math.log(1.10) + rng.normal(0.0, 0.05, size=20)
        caught += judge_paired("latency_p50_ms", x).verdict.verdict == "regression"
    assert caught / trials >= 0.9


def test_a_clear_slowdown_stops_at_an_early_look() -> None:
    x = np.full(20, math.log(1.5)) + np.random.default_rng(1).normal(0, 0.01, 20)
    result = judge_paired("latency_p50_ms", x)
    assert result.verdict.verdict == "regression" and result.stopped_early
    assert result.rounds_used < 20
    low, high = result.verdict.ci95 or (0, 0)
    assert 0.4 < low <= result.verdict.change <= high < 0.6


def test_verdict_never_contradicts_its_interval() -> None:
    rng = np.random.default_rng(9)
    for _ in range(300):
        x = rng.normal(rng.uniform(-0.1, 0.1), rng.uniform(0.005, 0.08), size=int(rng.integers(6, 30)))
        v = judge_paired("latency_p50_ms", x).verdict
        if v.verdict == "regression":
            assert v.ci95 is not None and v.ci95[0] > 0 and (v.change or 0) >= 0.025 - 1e-12
        if v.ci95 is not None and v.ci95[0] <= 0 <= v.ci95[1]:
            assert v.verdict == "unchanged"


def test_too_few_pairs_is_insufficient_data() -> None:
    v = judge_paired("latency_p50_ms", [0.1, 0.2, 0.15]).verdict
    assert v.verdict == "insufficient-data" and v.ci95 is None


def test_interim_looks_replay_the_same_decision() -> None:
    """Judging the first k looks' data (a run looked at while it goes on) stops exactly where
    judging the whole planned run stops, with the same verdict and interval."""
    rng = np.random.default_rng(21)
    for shift in (0.0, 0.04, 0.3):
        x = shift + rng.normal(0.0, 0.03, size=20)
        whole = judge_paired("latency_p50_ms", x, planned=20)
        for look in look_schedule(20):
            part = judge_paired("latency_p50_ms", x[:look], planned=20)
            if whole.stopped_early and look == whole.rounds_used:
                assert part.stopped_early and part.verdict == whole.verdict
            if look < whole.rounds_used:
                assert not part.stopped_early and not part.complete


def test_an_unfinished_run_reports_itself_incomplete() -> None:
    part = judge_paired("latency_p50_ms", np.zeros(7) + 0.01, planned=20)
    assert not part.complete and part.rounds_planned == 20 and part.rounds_used == 7
