"""Result x Budget -> Verdict: pass / fail / unknown per metric, with the reason when unknown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekit.core.profiles import BUDGET_METRICS, Budget

MIB = 1024 * 1024

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
# On an emulated board (edgekit lab: qemu user-mode) these are measured but say nothing about
# the real board, so they are reported and never judged.
TIMING_METRICS = frozenset(
    {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "cold_start_ms", "energy_mj_per_inference"}
)
EMULATED_REASON = "emulated board: timings are not the board's"


@dataclass(frozen=True)
class MetricValue:
    value: float | None
    reason: str | None = None  # why value is None


def _get(data: dict[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def metric_values(result: dict[str, Any]) -> dict[str, MetricValue]:
    """The budgetable metrics of a result, each a value or None with the reason."""
    latency = result.get("latency_ms") or {}
    null_reasons = latency.get("null_reasons") or {}
    values: dict[str, MetricValue] = {}
    for q in ("p50", "p90", "p99"):
        value = latency.get(q)
        values[f"latency_{q}_ms"] = MetricValue(
            value, None if value is not None else null_reasons.get(q, "not measured")
        )
    cold = result.get("cold_start_ms") or {}
    load, first = cold.get("load"), cold.get("first_inference")
    values["cold_start_ms"] = (
        MetricValue(load + first)
        if load is not None and first is not None
        else MetricValue(None, "not measured")
    )
    peak = _get(result, "memory", "peak_rss_bytes")
    values["peak_rss_mb"] = (
        MetricValue(peak / MIB)
        if peak is not None
        else MetricValue(None, _get(result, "memory", "reason") or "not measured")
    )
    size = _get(result, "artifact", "size_bytes")
    values["model_size_mb"] = (
        MetricValue(size / MIB) if size is not None else MetricValue(None, "unknown size")
    )
    energy = result.get("energy")
    mj = _get(energy, "mj_per_inference")
    values["energy_mj_per_inference"] = (
        MetricValue(mj)
        if mj is not None
        else MetricValue(None, _get(result, "null_reasons", "energy") or "no power sensor")
    )
    return values


def evaluate(result: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """The result's "budget" section: overall verdict and one check per budgeted metric.

    Overall: fail if any check fails, else unknown if any check could not be measured, else pass.
    """
    values = metric_values(result)
    emulated = bool(_get(result, "device", "emulated"))
    checks: list[dict[str, Any]] = []
    for metric, limit in budget.metric_limits().items():
        measured = values[metric]
        verdict = UNKNOWN if measured.value is None else (PASS if measured.value <= limit else FAIL)
        reason = measured.reason
        if emulated and metric in TIMING_METRICS and measured.value is not None:
            verdict, reason = UNKNOWN, EMULATED_REASON
        check: dict[str, Any] = {
            "metric": metric,
            "limit": limit,
            "value": measured.value,
            "verdict": verdict,
        }
        if reason:
            check["reason"] = reason
        checks.append(check)
    verdicts = {c["verdict"] for c in checks}
    overall = FAIL if FAIL in verdicts else UNKNOWN if UNKNOWN in verdicts else PASS
    return {"verdict": overall, "checks": checks}


__all__ = [
    "BUDGET_METRICS",
    "EMULATED_REASON",
    "FAIL",
    "PASS",
    "TIMING_METRICS",
    "UNKNOWN",
    "evaluate",
    "metric_values",
]
