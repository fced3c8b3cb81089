"""The values a report row shows, formatted once for every output format (HTML and Markdown)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgekit.core.result import Result
from edgekit.judge.budgets import MIB
from edgekit.report.data import base_model_of, device_of, model_of, recipe_of


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{digits}g}" if abs(float(value)) < 1000 else f"{float(value):.0f}"


def _mib(value: Any) -> str:
    return "–" if value is None else f"{value / MIB:.2f}"


def _percent(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.2f}%"


def suspect_reasons(result: Result) -> list[str]:
    """Why a run's numbers are not to be trusted as they stand (throttling, a hot start)."""
    thermal = result.thermal
    if thermal is None:
        return []
    reasons = list(thermal.suspect_reasons)
    if not reasons and (thermal.suspect or thermal.throttled):
        reasons.append("throttled during the timed window")
    return reasons


def _cold_start_ms(result: Result) -> float | None:
    """Load plus first inference, ms (the phases that were measured)."""
    cold = result.cold_start_ms
    if cold is None:
        return None
    phases = [v for v in (cold.load, cold.first_inference) if v is not None]
    return sum(phases) if phases else None


def _peak_rss(result: Result) -> int | None:
    return result.memory.peak_rss_bytes if result.memory is not None else None


def _energy_mj(result: Result) -> float | None:
    return result.energy.mj_per_inference if result.energy is not None else None


def _accuracy(result: Result) -> float | None:
    return result.artifact.quality.accuracy if result.artifact.quality is not None else None


def _run(result: Result) -> str:
    return (result.run_id or "")[:12]


def _ab(result: Result) -> str:
    """`ID8 baseline|candidate` for the two runs of one A/B comparison (`compare --device`), else —."""
    return f"{result.ab.ab_id[:8]} {result.ab.role}" if result.ab is not None else "—"


Column = tuple[str, Callable[[Result], str]]

# (heading, value) pairs of the summary table; one place for both formats.
SUMMARY_COLUMNS: tuple[Column, ...] = (
    ("device", device_of),
    ("model", base_model_of),
    ("recipe", recipe_of),
    ("p50 ms", lambda r: _number(r.latency_ms.p50)),
    ("p90 ms", lambda r: _number(r.latency_ms.p90)),
    ("p99 ms", lambda r: _number(r.latency_ms.p99)),
    ("cold start ms", lambda r: _number(_cold_start_ms(r))),
    ("peak RSS MiB", lambda r: _mib(_peak_rss(r))),
    ("size MiB", lambda r: _mib(r.artifact.size_bytes)),
    ("energy mJ/inf", lambda r: _number(_energy_mj(r))),
    ("accuracy", lambda r: _percent(_accuracy(r))),
    ("budget", lambda r: r.budget.verdict),
    ("run", _run),
    ("A/B", _ab),
    ("when (UTC)", lambda r: r.created_at[:16].replace("T", " ")),
)

RUN_COLUMNS: tuple[Column, ...] = (
    ("when (UTC)", lambda r: r.created_at[:19].replace("T", " ")),
    ("device", device_of),
    ("model", model_of),
    ("p50 ms", lambda r: _number(r.latency_ms.p50)),
    ("p99 ms", lambda r: _number(r.latency_ms.p99)),
    ("peak RSS MiB", lambda r: _mib(_peak_rss(r))),
    ("budget", lambda r: r.budget.verdict),
    ("run", _run),
    ("A/B", _ab),
)


def row(result: Result, columns: tuple[Column, ...]) -> list[str]:
    return [value(result) for _, value in columns]


def headings(columns: tuple[Column, ...]) -> list[str]:
    return [heading for heading, _ in columns]
