"""Latency statistics: pure functions over samples (numpy; scipy for the bootstrap), as asv /
hyperfine keep them.

Percentiles use numpy's "linear" method (Hyndman & Fan type 7, the default of numpy, R and
most benchmark tools). Outliers are counted and reported, never dropped.

When is a percentile worth reporting? MLPerf LoadGen's early-stopping rule asks for at least
64 queries before it will state a 90th percentile and 662 before a 99th; both are close to
6.6 / (1 - q) (66 and 660), i.e. about 6.6 samples expected beyond the percentile, so the
tail is actually observed rather than extrapolated. The same rule gives 13 samples for the
median. Below the minimum the value is None with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

MIN_SAMPLES_FOR_PERCENTILE: dict[float, int] = {50.0: 13, 90.0: 64, 99.0: 662}
BOOTSTRAP_RESAMPLES = 1000
# Bootstrap works on at most this many samples (a seeded systematic subsample beyond it): the
# CI of a percentile from 20k samples is already far narrower than run-to-run drift on a board.
BOOTSTRAP_MAX_SAMPLES = 20_000
TUKEY_K = 1.5
MAD_K = 3.0


def ns_to_ms(latencies_ns: Sequence[int] | ArrayLike) -> NDArray[np.float64]:
    return np.asarray(latencies_ns, dtype=np.float64) / 1e6


def _array(samples: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError("need a non-empty 1-D sequence of samples")
    if not np.all(np.isfinite(array)):
        raise ValueError("samples must be finite")
    return array


def percentile(samples: ArrayLike, q: float) -> float:
    return float(np.percentile(_array(samples), q, method="linear"))


def percentile_null_reason(n: int, q: float) -> str | None:
    """Why the q-th percentile of n samples is not reported, or None when it is."""
    needed = MIN_SAMPLES_FOR_PERCENTILE.get(q, math.ceil(6.6 / (1 - q / 100.0)))
    if n >= needed:
        return None
    return f"p{q:g} needs >= {needed} samples, have {n} (raise --runs or --min-seconds)"


def mad(samples: ArrayLike) -> float:
    """Median absolute deviation, raw (not scaled by 1.4826 to estimate a normal sigma)."""
    array = _array(samples)
    return float(np.median(np.abs(array - np.median(array))))


def iqr(samples: ArrayLike) -> float:
    q1, q3 = np.percentile(_array(samples), [25, 75])
    return float(q3 - q1)


@dataclass(frozen=True)
class Outliers:
    low: int
    high: int
    beyond_3_mad: int
    rule: str = "tukey-1.5iqr"

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "beyond_3_mad": self.beyond_3_mad, "rule": self.rule}


def outliers(samples: ArrayLike) -> Outliers:
    """Counts below Q1 - 1.5 IQR and above Q3 + 1.5 IQR (Tukey), and beyond median +- 3 MAD."""
    array = _array(samples)
    q1, q3 = np.percentile(array, [25, 75])
    spread = q3 - q1
    median = np.median(array)
    deviation = mad(array)
    return Outliers(
        low=int(np.sum(array < q1 - TUKEY_K * spread)),
        high=int(np.sum(array > q3 + TUKEY_K * spread)),
        beyond_3_mad=int(np.sum(np.abs(array - median) > MAD_K * deviation)) if deviation > 0 else 0,
    )


def bootstrap_ci(
    samples: ArrayLike,
    q: float,
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of the q-th percentile; None below the sample rule.

    `scipy.stats.bootstrap` (method "percentile", `resamples` resamples, the interval's ends being
    type-7 quantiles of the resampled percentiles). Deterministic for a seed. Memory stays bounded:
    resamples are drawn in batches of at most ~4M values, and more than BOOTSTRAP_MAX_SAMPLES
    samples are first thinned by a seeded systematic subsample. Raises ValueError for empty,
    non-1-D or non-finite samples.
    """
    array = _array(samples)
    if percentile_null_reason(array.size, q) is not None:
        return None
    rng = np.random.default_rng(seed)
    if array.size > BOOTSTRAP_MAX_SAMPLES:
        step = array.size / BOOTSTRAP_MAX_SAMPLES
        offset = rng.uniform(0, step)
        array = array[(offset + step * np.arange(BOOTSTRAP_MAX_SAMPLES)).astype(np.int64)]

    def statistic(resampled: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
        return np.percentile(resampled, q, axis=axis, method="linear")

    from scipy import stats as scipy_stats  # imported here: ~1 s, only paid when an interval is asked for

    result = scipy_stats.bootstrap(
        (array,),
        statistic,
        n_resamples=resamples,
        batch=max(1, min(resamples, 4_000_000 // array.size)),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=rng,
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class LatencySummary:
    n: int
    p50: float | None
    p90: float | None
    p99: float | None
    mean: float
    std: float | None
    min: float
    max: float
    mad: float
    ci95: dict[str, tuple[float, float] | None]
    outliers: Outliers
    null_reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "mad": self.mad,
            "ci95": {k: (list(v) if v is not None else None) for k, v in self.ci95.items()},
            "outliers": self.outliers.to_dict(),
            "null_reasons": dict(self.null_reasons),
        }


def summarize_latencies(latencies_ms: ArrayLike, *, seed: int = 0) -> LatencySummary:
    """Every statistic the result JSON carries, from per-inference latencies in ms."""
    array = _array(latencies_ms)
    n = int(array.size)
    reasons: dict[str, str] = {}
    quantiles: dict[str, float | None] = {}
    for q in (50.0, 90.0, 99.0):
        key = f"p{q:g}"
        reason = percentile_null_reason(n, q)
        if reason is None:
            quantiles[key] = percentile(array, q)
        else:
            quantiles[key] = None
            reasons[key] = reason
    std: float | None = float(np.std(array, ddof=1)) if n >= 2 else None
    if std is None:
        reasons["std"] = "std needs >= 2 samples"
    return LatencySummary(
        n=n,
        p50=quantiles["p50"],
        p90=quantiles["p90"],
        p99=quantiles["p99"],
        mean=float(np.mean(array)),
        std=std,
        min=float(np.min(array)),
        max=float(np.max(array)),
        mad=mad(array),
        ci95={"p50": bootstrap_ci(array, 50.0, seed=seed), "p90": bootstrap_ci(array, 90.0, seed=seed)},
        outliers=outliers(array),
        null_reasons=reasons,
    )


HISTOGRAM_BINS = 40


def latency_histogram(samples: ArrayLike, bins: int = HISTOGRAM_BINS) -> dict[str, list[float] | list[int]]:
    """Counts in `bins` log-spaced bins from min to max (latency is right-skewed: equal-ratio bins
    keep the body resolved and the tail visible), so reports can draw the distribution without
    keeping every sample. One sample or all-equal samples give one bin."""
    array = _array(samples)
    low, high = float(np.min(array)), float(np.max(array))
    if high <= low or low <= 0:
        return {"edges_ms": [low, high if high > low else low], "counts": [int(array.size)]}
    edges = np.geomspace(low, high, bins + 1)
    counts, _ = np.histogram(array, bins=edges)
    return {"edges_ms": [float(e) for e in edges], "counts": [int(c) for c in counts]}


# --- rounds and processes ------------------------------------------------------------------------
# A bench's timed window is spread over rounds within each bench child and over fresh children
# (edgekit.measure.bench, agents/edgekit_agent/child_process.py). The machine's own speed drifts
# between rounds and processes (clock state, cache placement, neighbours), which one run's
# pooled samples cannot show: an interval over single inferences is too narrow. The p50 interval
# is therefore taken over round medians, each round being one observation.

ROUND_MIN_FOR_ORDER_STATISTICS = 6  # 2 * 0.5**6 < 0.05: fewer rounds cannot give a 95% interval


def median_interval(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the population median from order statistics
    (the sign-test interval: Conover, *Practical Nonparametric Statistics*, 3rd ed., 1999, §3.2;
    Hollander, Wolfe & Chicken, *Nonparametric Statistical Methods*, 3rd ed., §3.6).

    With x_(1) <= ... <= x_(n) sorted and B ~ Binomial(n, 1/2), the interval is
    [x_(k), x_(n+1-k)] for the largest k with P(B <= k - 1) <= (1 - confidence) / 2; its coverage
    is 1 - 2 P(B <= k - 1) >= confidence for any continuous distribution. None when n is too
    small for the confidence (n < 6 at 95%). `values`: 1-D, finite, in any unit (the interval is
    in the same unit). Raises ValueError for empty, non-1-D or non-finite values.
    """
    from scipy import stats as scipy_stats

    array = np.sort(_array(values))
    n = int(array.size)
    tail = (1.0 - confidence) / 2.0
    cdf = scipy_stats.binom.cdf(np.arange(n + 1), n, 0.5)  # cdf[j] = P(B <= j)
    fitting = [k for k in range(1, n // 2 + 1) if cdf[k - 1] <= tail]
    if not fitting:
        return None
    k = max(fitting)
    return float(array[k - 1]), float(array[n - k])


def t_interval(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float] | None:
    """Student's t interval of the mean, mean ± t_{(1+c)/2, n-1} · s / √n (scipy.stats.t); None
    below 2 values. Used for 2-5 round medians, too few for median_interval at 95%: each round
    median is a median of many inferences, so close to normal. Raises ValueError like _array."""
    from scipy import stats as scipy_stats

    array = _array(values)
    n = int(array.size)
    if n < 2:
        return None
    mean = float(np.mean(array))
    half = float(scipy_stats.t.ppf((1.0 + confidence) / 2.0, n - 1) * np.std(array, ddof=1) / math.sqrt(n))
    return mean - half, mean + half


def round_p50_interval(
    round_medians: ArrayLike, confidence: float = 0.95
) -> tuple[tuple[float, float] | None, str]:
    """(interval, method) of the p50 over rounds, ms in and out: the order-statistic interval of
    the median of round medians (median_interval) from 6 rounds, the t interval of their mean for
    2-5 rounds, None for 1 round (no between-round spread is observed)."""
    array = _array(round_medians)
    n = int(array.size)
    interval = median_interval(array, confidence)
    if interval is not None:
        return interval, f"order statistics of {n} round medians"
    interval = t_interval(array, confidence)
    if interval is not None:
        return interval, f"Student t over {n} round medians"
    return None, "one round: no between-round spread observed"


def hull(*intervals: tuple[float, float] | None) -> tuple[float, float] | None:
    """The smallest interval holding every given one (None ones skipped; None when all are)."""
    present = [i for i in intervals if i is not None]
    if not present:
        return None
    return min(i[0] for i in present), max(i[1] for i in present)


def relative_spread_pct(values: ArrayLike) -> float | None:
    """Sample standard deviation (ddof=1) of the values over their median, in percent (the
    between-round or between-process spread of medians); None below 2 values."""
    array = _array(values)
    if array.size < 2:
        return None
    median = float(np.median(array))
    return float(100.0 * np.std(array, ddof=1) / median) if median > 0 else None


@dataclass(frozen=True)
class RoundSummary:
    """Round- and process-level statistics of one bench (all latencies in ms).

    medians: per round, in time order; processes: the process index of each round;
    process_medians: the median of all samples of each process, by process index;
    p50_ci95: the p50 interval: the hull of the round-level interval (round_p50_interval) and the
    sample-level bootstrap interval (so it is never narrower than the latter); method says which.
    """

    medians: list[float]
    processes: list[int]
    process_medians: list[float]
    round_spread_pct: float | None
    process_spread_pct: float | None
    p50_ci95: tuple[float, float] | None
    method: str


def summarize_rounds(
    latencies_ms: ArrayLike,
    round_sizes: Sequence[int],
    round_processes: Sequence[int],
    sample_ci95: tuple[float, float] | None,
    confidence: float = 0.95,
) -> RoundSummary:
    """Split the pooled samples (ms, rounds in time order) into rounds of `round_sizes` samples,
    each from process `round_processes[i]`, and summarise them (RoundSummary). Raises ValueError
    when the sizes do not add up to the samples or a round is empty."""
    array = _array(latencies_ms)
    sizes = [int(s) for s in round_sizes]
    if len(sizes) != len(round_processes) or not sizes or min(sizes) < 1 or sum(sizes) != array.size:
        raise ValueError(f"round sizes {sizes} do not split {array.size} samples")
    parts = np.split(array, np.cumsum(sizes)[:-1])
    medians = [float(np.median(part)) for part in parts]
    by_process: dict[int, list[NDArray[np.float64]]] = {}
    for process, part in zip(round_processes, parts, strict=True):
        by_process.setdefault(int(process), []).append(part)
    process_medians = [float(np.median(np.concatenate(by_process[p]))) for p in sorted(by_process)]
    interval, method = round_p50_interval(medians, confidence)
    combined = hull(interval, sample_ci95)
    if interval is None:
        method = f"sample bootstrap only ({method})"
    else:
        method = f"hull of {method} and the sample bootstrap"
    return RoundSummary(
        medians=medians,
        processes=[int(p) for p in round_processes],
        process_medians=process_medians,
        round_spread_pct=relative_spread_pct(medians),
        process_spread_pct=relative_spread_pct(process_medians),
        p50_ci95=combined,
        method=method,
    )
