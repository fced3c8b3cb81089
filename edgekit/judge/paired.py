"""The A/B gate: paired rounds of baseline and candidate, one estimator and its interval.

Pure functions. An interleaved A/B run (`edgekit compare --device`) times the two models in
alternating short rounds in one process; round pair i gives one observation

    x_i = log(candidate round median / baseline round median)    (dimensionless, float64)

so slow drifts of the machine (clocks, temperature, neighbours) cancel within a pair.

Estimator and interval (Hodges & Lehmann 1963; Hollander & Wolfe, *Nonparametric Statistical
Methods*, section 3.2): the Walsh averages (x_i + x_j) / 2, i <= j, M = n(n+1)/2 of them; the
estimate is their median; the 1 - a interval is [W_(C), W_(M+1-C)] of the sorted Walsh
averages, where C - 1 is the largest t with P(T+ <= t) <= a/2 under the null distribution of the
Wilcoxon signed-rank statistic T+ — exact (counted) up to `EXACT_MAX_N` pairs, above that the
normal approximation with the tie correction (var = n(n+1)(2n+1)/24 - sum(t^3 - t)/48 over groups
of tied |x|). The interval is the set of shifts the two-sided signed-rank test does not reject, so
the verdict and the interval never disagree.

Sequential looks (Lan & DeMets 1983, "Discrete sequential boundaries for clinical trials",
Biometrika 70:659-663): the data are looked at after n_1 < ... < n_K pairs (evenly spaced up to
the planned number). The O'Brien-Fleming-type spending function
alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) spends the two-sided `alpha` over the information
fractions t_k = n_k / n_K; look k's two-sided boundary c_k solves
P(no crossing before k, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1}) for the Brownian-motion
approximation of the standardised signed-rank statistic (computed by recursive numerical
integration, Armitage, McPherson & Rowe 1969). Look k's interval is the Wilcoxon interval at level
1 - 2(1 - Phi(c_k)), so the overall false-alarm rate stays at `alpha` however early a run stops.

Verdict at a look, from that look's interval [lo, hi] and estimate h (boundary = half the
threshold, as in edgekit.judge.regression, in log units log(1 + boundary)):
- regression when lo > 0 and h >= boundary; improvement when hi < 0 and h <= -boundary;
- a run stops at an early look only when the interval decides: lo >= boundary (regression),
  hi <= -boundary (improvement), or -boundary < lo <= hi < boundary (unchanged); else it goes on;
- at the last look: the rule above, else "unchanged" (with why), or "insufficient-data" when n is
  too small for any interval at that level (e.g. < 6 pairs at 95%).
Changes are returned as fractions (exp(log change) - 1: +0.07 = 7% slower).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgekit.judge.regression import ALPHA, BOUNDARY_FRACTION, DEFAULT_THRESHOLD, MetricVerdict

EXACT_MAX_N = 50  # exact signed-rank null distribution up to this many pairs
DEFAULT_LOOKS = 4
_GRID = 801  # points of the numerical integration of the sequential boundaries


@lru_cache(maxsize=64)
def _signed_rank_cdf(n: int) -> tuple[float, ...]:
    """P(T+ <= t) for t = 0 .. n(n+1)/2 under the null (no ties): the number of subsets of
    {1..n} with sum t over 2^n, counted by dynamic programming."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)  # exact below 2^53 for n <= 52
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return tuple(np.cumsum(counts) / 2.0**n)


def _tie_counts(values: NDArray[np.float64]) -> NDArray[np.int64]:
    return np.unique(np.abs(values), return_counts=True)[1]


def critical_rank(x: NDArray[np.float64], level_alpha: float) -> int:
    """C of the Hollander-Wolfe interval [W_(C), W_(M+1-C)] at two-sided level `level_alpha`
    (1-based); 0 when n is too small for that level (no finite interval)."""
    n = x.size
    m = n * (n + 1) // 2
    ties = _tie_counts(x)
    if n <= EXACT_MAX_N and np.all(ties == 1):
        cdf = np.asarray(_signed_rank_cdf(n))
        below = np.nonzero(cdf <= level_alpha / 2)[0]  # t with P(T+ <= t) <= a/2
        return int(below[-1]) + 1 if below.size else 0
    from scipy.stats import norm

    variance = n * (n + 1) * (2 * n + 1) / 24 - float((ties**3 - ties).sum()) / 48
    c = math.floor(m / 2 - norm.ppf(1 - level_alpha / 2) * math.sqrt(max(variance, 0.0)))
    return max(c, 0)


def walsh_averages(x: ArrayLike) -> NDArray[np.float64]:
    """The n(n+1)/2 averages (x_i + x_j) / 2, i <= j, sorted."""
    values = np.asarray(x, dtype=np.float64)
    i, j = np.triu_indices(values.size)
    return np.sort((values[i] + values[j]) / 2)


@dataclass(frozen=True)
class PairedEstimate:
    n: int
    estimate: float  # Hodges-Lehmann, log units
    low: float  # -inf when n is too small for the level
    high: float  # +inf likewise
    level: float  # confidence level of [low, high], e.g. 0.95
    p_value: float  # two-sided Wilcoxon signed-rank p of no shift


def hodges_lehmann(x: ArrayLike, alpha: float = ALPHA) -> PairedEstimate:
    """HL estimate of the median of `x` (1-D, >= 1 finite value) and its 1 - alpha interval by
    inverting the Wilcoxon signed-rank test (formulas in the module docstring). ValueError on an
    empty or non-finite `x`."""
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("need a 1-D array of >= 1 finite values")
    walsh = walsh_averages(values)
    c = critical_rank(values, alpha)
    low, high = (float(walsh[c - 1]), float(walsh[walsh.size - c])) if c >= 1 else (-math.inf, math.inf)
    from scipy.stats import wilcoxon

    if np.all(values == 0):
        p = 1.0
    else:
        p = float(wilcoxon(values, zero_method="wilcox", alternative="two-sided").pvalue)
    return PairedEstimate(values.size, float(np.median(walsh)), low, high, 1 - alpha, p)


def look_schedule(rounds: int, looks: int = DEFAULT_LOOKS) -> list[int]:
    """Round-pair counts at which the data are looked at: `looks` evenly spaced counts ending at
    `rounds` (fewer when rounds < looks; duplicates dropped). ValueError when rounds < 1."""
    if rounds < 1 or looks < 1:
        raise ValueError("rounds and looks must be >= 1")
    return sorted({math.ceil(k * rounds / looks) for k in range(1, looks + 1)})


def obrien_fleming_spending(t: float, alpha: float = ALPHA) -> float:
    """Lan-DeMets O'Brien-Fleming-type spending alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)),
    two-sided, for the information fraction 0 < t <= 1."""
    from scipy.stats import norm

    return float(2 - 2 * norm.cdf(norm.ppf(1 - alpha / 2) / math.sqrt(t)))


@lru_cache(maxsize=64)
def nominal_levels(fractions: tuple[float, ...], alpha: float = ALPHA) -> tuple[float, ...]:
    """Two-sided nominal alpha of each look (information fractions increasing, last 1.0) so that
    the looks together spend `alpha` along the O'Brien-Fleming-type function (module docstring).
    One look gives (alpha,)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    levels: list[float] = []
    spent_before = 0.0
    density_x: NDArray[np.float64] | None = None  # continuation density of B(t) on a grid
    density: NDArray[np.float64] | None = None
    t_before = 0.0
    for t in fractions:
        target = obrien_fleming_spending(t, alpha) - spent_before
        step = t - t_before
        if density is None or density_x is None:

            def crossing(b: float, step: float = step) -> float:
                return float(2 * norm.sf(b / math.sqrt(step)))

        else:
            x, f = density_x, density

            def crossing(b: float, step: float = step, x: NDArray[np.float64] = x,
                         f: NDArray[np.float64] = f) -> float:  # fmt: skip
                sd = math.sqrt(step)
                beyond = norm.sf((b - x) / sd) + norm.cdf((-b - x) / sd)
                return float(np.trapezoid(f * beyond, x))

        if target <= 1e-15:
            bound = 40.0 * math.sqrt(t)
        else:
            bound = brentq(lambda b, goal=target: crossing(b) - goal, 1e-6, 40.0 * math.sqrt(t), xtol=1e-10)
        levels.append(float(2 * norm.sf(bound / math.sqrt(t))))
        spent_before += target
        # the density of B(t) on (-bound, bound) with no earlier crossing
        grid = np.linspace(-bound, bound, _GRID)
        sd = math.sqrt(step)
        if density is None or density_x is None:
            new = norm.pdf(grid / sd) / sd
        else:
            kernel = norm.pdf((grid[:, None] - density_x[None, :]) / sd) / sd
            new = np.trapezoid(kernel * density[None, :], density_x, axis=1)
        density_x, density, t_before = grid, new, t
    return tuple(levels)


@dataclass(frozen=True)
class SequentialVerdict:
    verdict: MetricVerdict
    rounds_used: int  # round pairs the verdict rests on
    rounds_planned: int
    looks: list[int]  # the look schedule (round-pair counts) over the data given
    stopped_early: bool  # an interim look (before `rounds_planned`) decided
    level: float  # confidence level of verdict.ci95
    complete: bool  # all planned round pairs were given (else the last look was interim)


def _decide(est: PairedEstimate, boundary: float, final: bool) -> tuple[str, str] | None:
    lo, hi, h = est.low, est.high, est.estimate
    change = math.expm1(h)
    if not final:
        if lo >= boundary:
            return "regression", f"{change:+.1%} slower, interval above +{math.expm1(boundary):.1%}"
        if hi <= -boundary:
            return "improvement", f"{-change:.1%} faster, interval below -{math.expm1(boundary):.1%}"
        if -boundary < lo and hi < boundary:
            return "unchanged", f"interval inside ±{math.expm1(boundary):.1%}"
        return None
    if not math.isfinite(lo):
        return None
    if lo > 0 and h >= boundary:
        return "regression", f"{change:+.1%} slower, interval excludes 0"
    if hi < 0 and h <= -boundary:
        return "improvement", f"{-change:.1%} faster, interval excludes 0"
    if lo > 0 or hi < 0:
        return "unchanged", f"{change:+.1%} is real but below ±{math.expm1(boundary):.1%}"
    return "unchanged", "interval includes 0"


def judge_paired(
    metric: str,
    log_ratios: ArrayLike,
    baseline: float | None = None,
    candidate: float | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = ALPHA,
    looks: int = DEFAULT_LOOKS,
    planned: int | None = None,
) -> SequentialVerdict:
    """The sequential A/B verdict on per-round-pair log-ratios (1-D float, in round order).

    `planned` round pairs (default: all given) are looked at `looks` times (look_schedule). With
    fewer pairs than planned (a run looked at while it goes on, or cut short) the looks beyond the
    data are dropped and the data's own count is the last look, interim: when it does not decide
    under the early-stopping rule, the final rule gives the verdict and `complete` is False (the
    caller goes on measuring, or reports an incomplete run). `baseline`/`candidate` are reported
    as given (e.g. the p50 of each side, ms). Returns the verdict of the first look that decides, else of
    the last; `ci95` holds that look's interval as fractions (its level in `level`)."""
    x = np.asarray(log_ratios, dtype=np.float64)
    planned = max(planned or x.size, x.size)
    schedule = [n for n in look_schedule(planned, looks) if n <= x.size] if x.size else []
    if x.size and (not schedule or schedule[-1] != x.size):
        schedule.append(x.size)
    levels = nominal_levels(tuple(n / planned for n in schedule), alpha) if x.size else ()
    boundary = math.log1p(threshold * BOUNDARY_FRACTION)
    for index, (n, level_alpha) in enumerate(zip(schedule, levels, strict=True)):
        est = hodges_lehmann(x[:n], level_alpha)
        interim = n < planned
        decided = _decide(est, boundary, final=False) if interim else None
        last = index == len(schedule) - 1
        if decided is None and last:
            decided = _decide(est, boundary, final=True)
        elif decided is None:
            continue
        if decided is None:
            verdict = MetricVerdict(
                metric, baseline, candidate, math.expm1(est.estimate), None, est.p_value, threshold,
                "insufficient-data", f"{n} round pairs are too few for a {1 - level_alpha:.1%} interval",
            )  # fmt: skip
        else:
            verdict = MetricVerdict(
                metric, baseline, candidate, math.expm1(est.estimate),
                (math.expm1(est.low), math.expm1(est.high)), est.p_value, threshold, decided[0],
                f"{decided[1]} ({n} round pairs)",
            )  # fmt: skip
        stopped = interim and _decide(est, boundary, final=False) is not None
        return SequentialVerdict(verdict, n, planned, schedule, stopped, 1 - level_alpha, x.size >= planned)
    verdict = MetricVerdict(
        metric, baseline, candidate, None, None, None, threshold, "insufficient-data", "no round pairs"
    )
    return SequentialVerdict(verdict, 0, planned, schedule, False, 1 - alpha, False)
