"""Thermal state of a run from the agent's sensor snapshots, and whether the run is suspect (pure).

"Throttled during the window" is decided from what the board reports at the start and the end of
the timed window, and means any of:
- Raspberry Pi firmware (get_throttled): a "now" bit (under-voltage, ARM frequency capped,
  throttled, soft temperature limit: bits 0-3) set at the start or at the end, or a "has
  occurred" bit (16-19) newly set between them. Occurred bits already set at the start are
  history since boot, not this run.
- cpufreq: a CPU's scaling_max_freq lower at the end than at the start (thermal and power
  capping lower the policy maximum).
- Jetson: the nvpmodel power mode changed between the start and the end.
A scaling_cur_freq below the maximum is *not* throttling: ondemand/schedutil/powersave lower the
clock on purpose, and scaling_cur_freq is the last request, not the hardware clock. A cap that
starts and ends inside the window leaves no trace in cpufreq (Pi firmware's occurred bits keep it).

A run is suspect when it throttled during the window, started hotter than max_start_temp_c
(the agent waited, timed out and ran anyway), or had max_start_temp_c while its thermal zones read
only impossible values: a start gate is never met by an invalid reading. A board without thermal
zones cannot tell (wait.met null, the reason in wait.reason), like one without a throttle source.

Temperatures: a zone the agent found invalid (a disconnected or power-gated sensor: Jetson's
-256 °C, an unpowered 0 °C, above 150 °C; agents/edgekit_agent/sensors/thermal.py) has temp_c None
and a reason; it is listed per zone and never stands for the board. The watched temperature is
the profile's zone type when valid, else the hottest valid zone provided one covers the CPU, else
None ("unknown") with the reason.
"""

from __future__ import annotations

from typing import Any

NOW_BITS = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}
OCCURRED_SHIFT = 16


def zone_temperature(snapshot: dict[str, Any], zone_type: str) -> tuple[float | None, str | None]:
    """(°C, why None): the zone of that type when it reads validly, else the hottest valid zone
    when a valid zone covers the CPU (the agent's "cpu" flag; a zone without it counts), else None
    with the reason."""
    zones = snapshot.get("thermal_zones") or []
    valid = [z for z in zones if z.get("temp_c") is not None]
    named = [z["temp_c"] for z in valid if zone_type and z.get("type") == zone_type]
    if named:
        return max(named), None
    if any(z.get("cpu", True) for z in valid):
        return max(z["temp_c"] for z in valid), None
    if not zones:
        return None, f"no thermal zone {zone_type!r}" if zone_type else "no thermal zones"
    invalid = "; ".join(f"{z.get('zone')} ({z.get('type')}) {z['reason']}" for z in zones if z.get("reason"))
    return None, "no valid thermal zone covers the CPU" + (f": {invalid}" if invalid else "")


def zone_readings(start: dict[str, Any], end: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Each zone at the window's start and end (°C, None with the reason when invalid); None when
    the board has no zones."""
    ends = {z.get("zone"): z for z in end.get("thermal_zones") or []}
    readings = []
    for zone in start.get("thermal_zones") or []:
        last = ends.get(zone.get("zone")) or {}
        reading: dict[str, Any] = {
            "zone": zone.get("zone"),
            "type": zone.get("type"),
            "covers_cpu": zone.get("cpu"),
            "start_c": zone.get("temp_c"),
            "end_c": last.get("temp_c"),
        }
        reasons = {k: r for k, r in (("start_c", zone.get("reason")), ("end_c", last.get("reason"))) if r}
        if reasons:
            reading["null_reasons"] = reasons
        readings.append(reading)
    return readings or None


def _firmware_bits(snapshot: dict[str, Any]) -> int | None:
    raw = (snapshot.get("throttled") or {}).get("raw")
    try:
        return int(raw, 16) if isinstance(raw, str) else None
    except ValueError:
        return None


def _firmware_reasons(start: int, end: int) -> list[str]:
    reasons = []
    for bit, name in NOW_BITS.items():
        for when, bits in (("start", start), ("end", end)):
            if bits & (1 << bit):
                reasons.append(f"firmware: {name} at the {when} (get_throttled 0x{bits:x})")
        occurred = 1 << (bit + OCCURRED_SHIFT)
        if end & occurred and not start & occurred:
            reasons.append(f"firmware: {name} occurred during the window (0x{start:x} -> 0x{end:x})")
    return reasons


def _cpufreq_caps(start: dict[str, Any], end: dict[str, Any]) -> tuple[bool, list[str]]:
    before = {c.get("cpu"): c.get("max_khz") for c in start.get("cpufreq") or [] if c.get("max_khz")}
    after = {c.get("cpu"): c.get("max_khz") for c in end.get("cpufreq") or [] if c.get("max_khz")}
    common = sorted(set(before) & set(after), key=str)
    reasons = [
        f"cpu{cpu} scaling_max_freq capped {before[cpu]} -> {after[cpu]} kHz during the window"
        for cpu in common
        if after[cpu] < before[cpu]
    ]
    return bool(common), reasons


def throttling(start: dict[str, Any], end: dict[str, Any]) -> tuple[bool | None, list[str]]:
    """(throttled during the window, why); None when the board reports nothing to tell by."""
    reasons: list[str] = []
    bits_start, bits_end = _firmware_bits(start), _firmware_bits(end)
    known = bits_start is not None and bits_end is not None
    if bits_start is not None and bits_end is not None:
        reasons += _firmware_reasons(bits_start, bits_end)
    else:  # a throttle source without raw bits: only its throttled-now flag
        for when, snapshot in (("start", start), ("end", end)):
            state = snapshot.get("throttled") or {}
            if isinstance(state.get("value"), bool):
                known = True
                if state["value"]:
                    reasons.append(f"{state.get('source')}: throttled at the {when}")
    has_cpufreq, caps = _cpufreq_caps(start, end)
    known |= has_cpufreq
    reasons += caps
    mode_start, mode_end = (start.get("nvpmodel") or {}).get("mode"), (end.get("nvpmodel") or {}).get("mode")
    if mode_start and mode_end:
        known = True
        if mode_start != mode_end:
            reasons.append(f"nvpmodel power mode changed {mode_start} -> {mode_end} during the window")
    return (bool(reasons) if known else None), reasons


def thermal_summary(
    start: dict[str, Any], end: dict[str, Any], zone_type: str, wait: dict[str, Any] | None = None
) -> dict[str, Any]:
    start_c, start_why = zone_temperature(start, zone_type)
    end_c, end_why = zone_temperature(end, zone_type)
    throttled, throttle_reasons = throttling(start, end)
    suspect_reasons = list(throttle_reasons)
    if wait and wait.get("timed_out"):
        suspect_reasons.insert(
            0,
            f"started hot: {wait.get('zone')} at {wait.get('start_temp_c')} °C, not below "
            f"max_start_temp_c {wait.get('max_start_temp_c')} °C after waiting {wait.get('waited_s')} s",
        )
    elif wait and wait.get("met") is False and wait.get("start_temp_c") is None:
        suspect_reasons.insert(
            0,
            f"max_start_temp_c {wait.get('max_start_temp_c')} °C not checked: "
            f"{wait.get('reason') or 'no valid temperature'}",
        )
    summary: dict[str, Any] = {
        "start_c": start_c,
        "end_c": end_c,
        "zone": zone_type or "hottest",
        "throttled": throttled,
        "throttle_start": start.get("throttled"),
        "throttle_end": end.get("throttled"),
        "wait": wait,
        "suspect": bool(suspect_reasons),
        "suspect_reasons": suspect_reasons,
    }
    zones = zone_readings(start, end)
    if zones is not None:
        summary["zones"] = zones
    reasons = {}
    if start_c is None:
        reasons["start_c"] = start_why or "no thermal zones"
    if end_c is None and end_why and end_why != start_why:
        reasons["end_c"] = end_why
    if throttled is None:
        reasons["throttled"] = ((start.get("throttled") or {}).get("reason")) or "no throttle source"
    if reasons:
        summary["null_reasons"] = reasons
    return summary
