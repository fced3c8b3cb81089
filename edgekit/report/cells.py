"""The values a report row shows, formatted once for every output format (HTML and Markdown)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def suspect_reasons(result: dict[str, Any]) -> list[str]:
    """Why a run's numbers are not to be trusted as they stand (throttling, a hot start)."""
    thermal = result.get("thermal") or {}
    reasons = list(thermal.get("suspect_reasons") or [])
    if not reasons and (thermal.get("suspect") or thermal.get("throttled")):
        reasons.append("throttled during the timed window")
    return reasons


# (heading, value) pairs of the summary table; one place for both formats.
SUMMARY_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("device", device_of),
    ("model", base_model_of),
    ("recipe", recipe_of),
    ("p50 ms", lambda r: _number((r.get("latency_ms") or {}).get("p50"))),
    ("p90 ms", lambda r: _number((r.get("latency_ms") or {}).get("p90"))),
    ("p99 ms", lambda r: _number((r.get("latency_ms") or {}).get("p99"))),
    (
        "cold start ms",
        lambda r: _number(sum((r.get("cold_start_ms") or {}).values()) if r.get("cold_start_ms") else None),
    ),
    ("peak RSS MiB", lambda r: _mib((r.get("memory") or {}).get("peak_rss_bytes"))),
    ("size MiB", lambda r: _mib((r.get("artifact") or {}).get("size_bytes"))),
    ("energy mJ/inf", lambda r: _number((r.get("energy") or {}).get("mj_per_inference"))),
    ("accuracy", lambda r: _percent(((r.get("artifact") or {}).get("quality") or {}).get("accuracy"))),
    ("budget", lambda r: str((r.get("budget") or {}).get("verdict", "unknown"))),
    ("run", lambda r: str(r.get("run_id", ""))[:12]),
    ("when (UTC)", lambda r: str(r.get("created_at", ""))[:16].replace("T", " ")),
)

RUN_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("when (UTC)", lambda r: str(r.get("created_at", ""))[:19].replace("T", " ")),
    ("device", device_of),
    ("model", model_of),
    ("p50 ms", lambda r: _number((r.get("latency_ms") or {}).get("p50"))),
    ("p99 ms", lambda r: _number((r.get("latency_ms") or {}).get("p99"))),
    ("peak RSS MiB", lambda r: _mib((r.get("memory") or {}).get("peak_rss_bytes"))),
    ("budget", lambda r: str((r.get("budget") or {}).get("verdict", "unknown"))),
    ("run", lambda r: str(r.get("run_id", ""))[:12]),
)


def row(
    result: dict[str, Any], columns: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...]
) -> list[str]:
    return [value(result) for _, value in columns]


def headings(columns: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...]) -> list[str]:
    return [heading for heading, _ in columns]
