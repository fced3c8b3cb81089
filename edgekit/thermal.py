"""Thermal state of a run from the agent's sensor snapshots (pure)."""

from __future__ import annotations

from typing import Any


def zone_temperature(snapshot: dict[str, Any], zone_type: str) -> float | None:
    """Temperature of the zone of that type, or the hottest zone when zone_type is ''."""
    temps = [
        zone.get("temp_c")
        for zone in snapshot.get("thermal_zones") or []
        if zone.get("temp_c") is not None and (not zone_type or zone.get("type") == zone_type)
    ]
    return max(temps) if temps else None


def _throttled(snapshot: dict[str, Any]) -> bool | None:
    throttled = snapshot.get("throttled") or {}
    value = throttled.get("value")
    return value if isinstance(value, bool) else None


def thermal_summary(start: dict[str, Any], end: dict[str, Any], zone_type: str) -> dict[str, Any]:
    start_c, end_c = zone_temperature(start, zone_type), zone_temperature(end, zone_type)
    flags = [_throttled(start), _throttled(end)]
    known = [f for f in flags if f is not None]
    summary: dict[str, Any] = {
        "start_c": start_c,
        "end_c": end_c,
        "zone": zone_type or "hottest",
        "throttled": any(known) if known else None,
    }
    reasons = {}
    if start_c is None:
        reasons["start_c"] = f"no thermal zone {zone_type!r}" if zone_type else "no thermal zones"
    if not known:
        reasons["throttled"] = ((start.get("throttled") or {}).get("reason")) or "no throttle source"
    if reasons:
        summary["null_reasons"] = reasons
    return summary
