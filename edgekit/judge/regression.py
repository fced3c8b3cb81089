"""The regression gate: is the candidate slower than the baseline, by enough to matter, for sure?

Pure functions. Single inferences are autocorrelated (caches, clocks, the scheduler), so the test
is not run on them: each run's timed samples are cut into `BLOCKS` consecutive blocks and each
block's median is one observation (results keep these as `latency_ms.block_medians`). Several runs
of one side pool their blocks, which brings run-to-run variance into the comparison.

A metric regresses when both hold:
- the difference is significant: Mann-Whitney U on the block medians, two-sided p < `alpha`;
- the effect is large enough: `threshold` (default 5%) is the smallest slowdown the gate must
  catch, so the relative change of the median must reach half of it (2.5%) — the boundary that
  balances missing a threshold-sized slowdown against flagging a change of zero. A significant
  change below that boundary is reported, not flagged. The 95% bootstrap interval of the change
  is reported with it.
The mirror image is an improvement. Runs whose fingerprints differ (governor, clocks, runtime
version, threads, ...) or that throttled are "not comparable" rather than silently compared.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

BLOCKS = 10
DEFAULT_THRESHOLD = 0.05
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
# The effect boundary sits halfway between "no change" and the threshold: the point that balances
# the two errors (a real threshold-sized change missed, a zero change flagged) under symmetric noise.
BOUNDARY_FRACTION = 0.5
EXACT_MAX_N = 30  # exact U distribution up to this many observations per side (no ties)


def block_medians(samples: ArrayLike, blocks: int = BLOCKS) -> list[float]:
    """Medians of `blocks` consecutive, near-equal slices of the samples, in time order."""
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim != 1 or array.size < blocks:
        raise ValueError(f"need at least {blocks} samples for {blocks} blocks, have {array.size}")
    return [float(np.median(part)) for part in np.array_split(array, blocks)]


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of the first sample
    p_value: float  # two-sided
    method: str  # "exact" or "normal"


@lru_cache(maxsize=256)
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many rank arrangements give each U = 0..m*n (the Gaussian binomial coefficients)."""
    if m == 0 or n == 0:
        return (1,)
    without_last_of_first = _u_counts(m - 1, n)  # the largest value is in the second sample
    without_last_of_second = _u_counts(m, n - 1)
    counts = [0] * (m * n + 1)
    for u, c in enumerate(without_last_of_second):
        counts[u] += c
    for u, c in enumerate(without_last_of_first):
        counts[u + n] += c  # the largest value is in the first sample: beats all n of the second
    return tuple(counts)


def mann_whitney_u(a: ArrayLike, b: ArrayLike) -> MannWhitney:
    """Two-sided Mann-Whitney U test: exact without ties for small samples, else the normal
    approximation with tie and continuity corrections."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    m, n = x.size, y.size
    if m == 0 or n == 0:
        raise ValueError("both samples need at least one value")
    combined = np.concatenate([x, y])
    ranks = _average_ranks(combined)
    u = float(ranks[:m].sum() - m * (m + 1) / 2)
    ties = np.unique(combined, return_counts=True)[1]
    if max(m, n) <= EXACT_MAX_N and np.all(ties == 1):
        counts = _u_counts(m, n)
        total = math.comb(m + n, m)
        k = round(u)
        lower = sum(counts[: k + 1]) / total
        upper = sum(counts[k:]) / total
        return MannWhitney(u, min(1.0, 2 * min(lower, upper)), "exact")
    mean = m * n / 2
    tie_term = float((ties**3 - ties).sum()) / ((m + n) * (m + n - 1))
    variance = m * n / 12 * ((m + n + 1) - tie_term)
    if variance <= 0:
        return MannWhitney(u, 1.0, "normal")
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    return MannWhitney(u, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))), "normal")


def _average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=unique.size)
    counts = np.bincount(inverse, minlength=unique.size)
    return (sums / counts)[inverse]


def relative_change_ci(
    baseline: ArrayLike, candidate: ArrayLike, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float, float]:
    """median(candidate) / median(baseline) - 1, with a 95% percentile-bootstrap interval.

    Each side is resampled independently (`scipy.stats.bootstrap`, unpaired, method
    "percentile", `resamples` resamples, seeded). Both sides need >= 2 observations (ValueError).
    Returns (change, low, high), all relative (+0.07 = 7% slower).
    """
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)

    def change_of(
        base_resampled: NDArray[np.float64], cand_resampled: NDArray[np.float64], axis: int
    ) -> NDArray[np.float64]:
        return np.median(cand_resampled, axis=axis) / np.median(base_resampled, axis=axis) - 1

    from scipy import stats as scipy_stats  # imported here: ~1 s, only paid when an interval is asked for

    result = scipy_stats.bootstrap(
        (base, cand),
        change_of,
        n_resamples=resamples,
        vectorized=True,
        paired=False,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(np.median(cand) / np.median(base) - 1), float(interval.low), float(interval.high)


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    baseline: float | None
    candidate: float | None
    change: float | None  # relative: +0.07 = 7% more (slower, bigger)
    ci95: tuple[float, float] | None
    p_value: float | None
    threshold: float
    verdict: str  # regression | improvement | unchanged | not-comparable | insufficient-data
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_samples(
    metric: str,
    baseline: ArrayLike,
    candidate: ArrayLike,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = ALPHA,
    seed: int = 0,
) -> MetricVerdict:
    """Verdict for a metric with repeated observations (block medians), lower is better."""
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if base.size < 3 or cand.size < 3:
        return MetricVerdict(
            metric, None, None, None, None, None, threshold, "insufficient-data",
            f"need >= 3 observations per side, have {base.size} and {cand.size}",
        )  # fmt: skip
    test = mann_whitney_u(cand, base)
    change, low, high = relative_change_ci(base, cand, seed=seed)
    significant = test.p_value < alpha
    boundary = threshold * BOUNDARY_FRACTION
    if significant and change >= boundary:
        verdict, reason = "regression", f"{change:+.1%} slower, p={test.p_value:.2g}"
    elif significant and change <= -boundary:
        verdict, reason = "improvement", f"{-change:.1%} faster, p={test.p_value:.2g}"
    elif significant:
        verdict, reason = (
            "unchanged",
            f"significant (p={test.p_value:.2g}) but {change:+.1%} is below ±{boundary:.1%}",
        )
    else:
        verdict, reason = "unchanged", f"not significant (p={test.p_value:.2g})"
    return MetricVerdict(
        metric, float(np.median(base)), float(np.median(cand)), change, (low, high), test.p_value,
        threshold, verdict, reason,
    )  # fmt: skip


def judge_scalar(
    metric: str, baseline: float | None, candidate: float | None, threshold: float = DEFAULT_THRESHOLD
) -> MetricVerdict:
    """Verdict for a metric measured once per run and near-deterministic (sizes, peak memory):
    the threshold alone decides."""
    if baseline is None or candidate is None or baseline <= 0:
        return MetricVerdict(
            metric, baseline, candidate, None, None, None, threshold, "insufficient-data",
            "missing on one side",
        )  # fmt: skip
    change = candidate / baseline - 1
    if change > threshold:
        verdict, reason = "regression", f"{change:+.1%} > +{threshold:.0%}"
    elif change < -threshold:
        verdict, reason = "improvement", f"{change:+.1%} < -{threshold:.0%}"
    else:
        verdict, reason = "unchanged", f"{change:+.1%} within ±{threshold:.0%}"
    return MetricVerdict(metric, baseline, candidate, change, None, None, threshold, verdict, reason)
