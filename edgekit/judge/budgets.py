"""Result x Budget -> Verdict: pass / fail / unknown per metric, with the reason when unknown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgekit.core.profiles import BUDGET_METRICS, MINIMUM_METRICS, Budget
from edgekit.core.result import BudgetCheck, BudgetVerdict, Measurement

MIB = 1024 * 1024

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
# On an emulated board (edgekit lab: qemu user-mode) these are measured but say nothing about
# the real board, so they are reported and never judged.
TIMING_METRICS = frozenset(
    {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "cold_start_ms", "energy_mj_per_inference"}
)
EMULATED_REASON = "emulated board: timings are not the board's"


def unjudgeable_metrics(
    budget: Budget, *, device: str, emulated: bool, power_problem: str | None
) -> dict[str, str]:
    """The budgeted metrics this device can never measure, metric -> why: energy when no power
    sensor of the profile works on it (`power_problem`: the agent's reason, None when one works),
    the timing metrics on an emulated board. Judging them is always "unknown" there."""
    found: dict[str, str] = {}
    for metric in budget.metric_limits():
        if metric == "energy_mj_per_inference" and power_problem is not None:
            found[metric] = f"no power sensor on {device}: {power_problem}"
        elif emulated and metric in TIMING_METRICS:
            found[metric] = EMULATED_REASON
    return found


@dataclass(frozen=True)
class MetricValue:
    value: float | None
    reason: str | None = None  # why value is None


def metric_values(result: Measurement) -> dict[str, MetricValue]:
    """The budgetable metrics of a result, each a value or None with the reason. Units: latency and
    cold start ms, peak RSS and model size MiB, energy mJ per inference, accelerated fraction 0-1
    (runtime.placement)."""
    latency = result.latency_ms
    values: dict[str, MetricValue] = {}
    for q in ("p50", "p90", "p99"):
        value = getattr(latency, q)
        values[f"latency_{q}_ms"] = MetricValue(
            value, None if value is not None else latency.null_reasons.get(q, "not measured")
        )
    cold = result.cold_start_ms
    load, first = (cold.load, cold.first_inference) if cold is not None else (None, None)
    values["cold_start_ms"] = (
        MetricValue(load + first)
        if load is not None and first is not None
        else MetricValue(None, "not measured")
    )
    memory = result.memory
    peak = memory.peak_rss_bytes if memory is not None else None
    values["peak_rss_mb"] = (
        MetricValue(peak / MIB)
        if peak is not None
        else MetricValue(None, (memory.reason if memory is not None else None) or "not measured")
    )
    size = result.artifact.size_bytes
    values["model_size_mb"] = (
        MetricValue(size / MIB) if size is not None else MetricValue(None, "unknown size")
    )
    mj = result.energy.mj_per_inference if result.energy is not None else None
    values["energy_mj_per_inference"] = (
        MetricValue(mj)
        if mj is not None
        else MetricValue(None, result.null_reasons.get("energy") or "no power sensor")
    )
    placement = result.runtime.placement if result.runtime is not None else None
    fraction = placement.accelerated_fraction if placement is not None else None
    values["min_accelerated_fraction"] = (
        MetricValue(fraction)
        if fraction is not None
        else MetricValue(None, "no node placement reported (an agent or runtime that cannot tell)")
    )
    return values


def within(metric: str, value: float, limit: float) -> bool:
    """Whether `value` meets the budget `limit`: value >= limit for the MINIMUM_METRICS
    (min_accelerated_fraction), value <= limit for every other metric."""
    return value >= limit if metric in MINIMUM_METRICS else value <= limit


def evaluate(
    result: Measurement,
    budget: Budget,
    profile: str | None = None,
    unjudgeable: Mapping[str, str] | None = None,
) -> BudgetVerdict:
    """The result's "budget" section: overall verdict and one check per budgeted metric (`profile`,
    when given, names the profile whose budget this is). A metric in `unjudgeable`
    (unjudgeable_metrics: the device cannot measure it) that is unknown is marked so, with that
    reason.

    Overall: fail if any check fails, else unknown if any check could not be measured, else pass.
    """
    values = metric_values(result)
    emulated = bool(result.device.emulated)
    checks: list[BudgetCheck] = []
    for metric, limit in budget.metric_limits().items():
        measured = values[metric]
        value = measured.value
        verdict = UNKNOWN if value is None else (PASS if within(metric, value, limit) else FAIL)
        reason = measured.reason
        if emulated and metric in TIMING_METRICS and measured.value is not None:
            verdict, reason = UNKNOWN, EMULATED_REASON
        cannot = (unjudgeable or {}).get(metric) if verdict == UNKNOWN else None
        if emulated and reason == EMULATED_REASON:
            cannot = EMULATED_REASON
        check = BudgetCheck(metric=metric, limit=limit, value=measured.value, verdict=verdict)
        if cannot:
            check.reason, check.unjudgeable = cannot, True
        elif reason:
            check.reason = reason
        checks.append(check)
    verdicts = {c.verdict for c in checks}
    overall = FAIL if FAIL in verdicts else UNKNOWN if UNKNOWN in verdicts else PASS
    verdict = BudgetVerdict(verdict=overall, checks=checks)
    if profile is not None:
        verdict.profile = profile
    return verdict


__all__ = [
    "BUDGET_METRICS",
    "EMULATED_REASON",
    "FAIL",
    "PASS",
    "TIMING_METRICS",
    "UNKNOWN",
    "evaluate",
    "metric_values",
    "unjudgeable_metrics",
    "within",
]
