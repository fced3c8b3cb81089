"""Simulated latency runs with known spreads, for the statistics tests (the gate's power)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def synthetic_latencies_ms(
    rng: np.random.Generator,
    n: int = 300,
    median_ms: float = 10.0,
    slowdown: float = 0.0,
    run_sigma: float = 0.005,
    body_sigma: float = 0.04,
    drift_sigma: float = 0.01,
    outlier_rate: float = 0.01,
) -> NDArray[np.float64]:
    """One run's latencies shaped like a board's: a right-skewed (log-normal) body, a slow AR(1)
    drift (clocks, caches), rare large outliers (preemption, 1.5-4x) and a per-run offset
    (run-to-run variation). `slowdown` = 0.05 makes every inference 5% slower."""
    drift = np.empty(n)
    level = 0.0
    for index in range(n):
        level = 0.9 * level + rng.normal(0.0, drift_sigma * math.sqrt(1 - 0.81))
        drift[index] = level
    log_latency = math.log(median_ms * (1 + slowdown)) + rng.normal(0.0, run_sigma) + drift
    samples = np.exp(log_latency + rng.normal(0.0, body_sigma, n))
    spikes = rng.random(n) < outlier_rate
    samples[spikes] *= rng.uniform(1.5, 4.0, int(spikes.sum()))
    return samples
