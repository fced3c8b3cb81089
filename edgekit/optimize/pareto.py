"""The Pareto front of measured candidates, and the pick for an objective: pure functions.

Objectives are all "lower is better": p50 latency on the device, artifact size, energy per
inference, and accuracy *drop* in points. Measured latency is noisy, so a candidate dominates
another only when it is no worse on every objective (within each objective's tolerance) and
better beyond the tolerance on at least one; two candidates whose latencies differ by less
than the tolerance are tied on latency. That keeps the front the same from one search to the
next on the same board (same seed, same candidates), instead of flipping on noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

OBJECTIVES = ("latency", "size", "energy")


@dataclass(frozen=True)
class Tolerances:
    latency_rel: float = 0.05  # 5%: the regression gate's default threshold
    size_rel: float = 0.01
    energy_rel: float = 0.05
    accuracy_points: float = 0.1


@dataclass(frozen=True)
class Measured:
    name: str
    latency_ms: float
    size_bytes: float
    accuracy_drop_points: float | None  # None: not measurable (no labels); treated as 0
    energy_mj: float | None  # None: no power sensor; energy is then left out of dominance

    def values(self) -> tuple[float, float, float | None, float]:
        return (self.latency_ms, self.size_bytes, self.energy_mj, self.accuracy_drop_points or 0.0)


def _better(a: float, b: float, rel: float = 0.0, absolute: float = 0.0) -> bool:
    """a is better (lower) than b beyond the tolerance."""
    return a < b - max(abs(b) * rel, absolute)


def _no_worse(a: float, b: float, rel: float = 0.0, absolute: float = 0.0) -> bool:
    return a <= b + max(abs(b) * rel, absolute)


def dominates(a: Measured, b: Measured, tol: Tolerances = Tolerances()) -> bool:
    rules = [
        (a.latency_ms, b.latency_ms, tol.latency_rel, 0.0),
        (a.size_bytes, b.size_bytes, tol.size_rel, 0.0),
        (a.accuracy_drop_points or 0.0, b.accuracy_drop_points or 0.0, 0.0, tol.accuracy_points),
    ]
    if a.energy_mj is not None and b.energy_mj is not None:
        rules.append((a.energy_mj, b.energy_mj, tol.energy_rel, 0.0))
    no_worse = all(_no_worse(x, y, rel, ab) for x, y, rel, ab in rules)
    better = any(_better(x, y, rel, ab) for x, y, rel, ab in rules)
    return no_worse and better


def pareto_front(candidates: Sequence[Measured], tol: Tolerances = Tolerances()) -> list[Measured]:
    """The candidates no other candidate dominates, in input order. Tolerances make dominance
    intransitive in rare cases (a cycle a > b > c > a); should that leave nothing, the strict
    front (zero tolerances) is returned instead, which is never empty."""
    front = [c for c in candidates if not any(dominates(o, c, tol) for o in candidates if o is not c)]
    if front or not candidates:
        return front
    return pareto_front(candidates, Tolerances(0.0, 0.0, 0.0, 0.0))


def objective_key(objective: str, candidate: Measured) -> tuple[float, ...]:
    """Sort key for the pick: the objective first, then the others as tie-breakers."""
    energy = candidate.energy_mj if candidate.energy_mj is not None else float("inf")
    drop = candidate.accuracy_drop_points or 0.0
    if objective == "latency":
        return (candidate.latency_ms, candidate.size_bytes, drop)
    if objective == "size":
        return (candidate.size_bytes, candidate.latency_ms, drop)
    if objective == "energy":
        return (energy, candidate.latency_ms, candidate.size_bytes)
    raise ValueError(f"unknown objective {objective!r} (one of {', '.join(OBJECTIVES)})")


def pick(
    front: Sequence[Measured], objective: str, within_budget: dict[str, bool] | None = None
) -> Measured | None:
    """The best front member for the objective, preferring those within the device's budgets
    (`within_budget[name]`); None for an empty front."""
    if not front:
        return None
    fits = within_budget or {}
    return min(front, key=lambda c: (0 if fits.get(c.name, True) else 1, *objective_key(objective, c)))
