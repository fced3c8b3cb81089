"""Thermal zones: /sys/class/thermal/thermal_zoneN/{temp,type} (docs/reference/sensor-formats.md §6).

A zone whose reading is impossible for working silicon is a disconnected or power-gated sensor,
not a temperature: Jetson reports a gated GPU or CV zone as -256000 millidegrees (-256 °C; jtop
shows it as offline), and an unpowered sensor reads 0. Such a zone's temp_c is None with the
reason, and it never stands for the board's temperature.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from edgekit_agent.host import Host, parse_int

# Valid readings, °C: at or above the lowest rated ambient of industrial parts (-40 °C) and at
# or below 150 °C (above any junction's rated maximum, 105-125 °C); exactly 0 is an unpowered
# sensor, not a board at the freezing point.
MIN_VALID_C = -40.0
MAX_VALID_C = 150.0
# Zone types whose sensor sits on or covers the CPU: cpu-thermal (Pi, Orin), CPU-therm (JetPack 4),
# x86_pkg_temp (Intel package), soc_thermal / soc0-thermal (Rockchip, Orin SoC), tj-thermal (Orin
# junction: the maximum over the die), acpitz (the ACPI zone firmware puts on the processor).
CPU_ZONE = re.compile(r"cpu|x86_pkg_temp|soc|^tj|acpitz", re.IGNORECASE)


def parse_millidegrees(text: Optional[str]) -> Optional[float]:
    """thermal_zone*/temp is millidegrees Celsius ("48312\\n" -> 48.312)."""
    value = parse_int(text)
    return None if value is None else value / 1000.0


def invalid_reading(temp_c: float) -> Optional[str]:
    """Why a reading (°C) cannot be a temperature, or None when it can."""
    if temp_c == 0:
        return "reads 0 °C: an unpowered or disconnected sensor"
    if temp_c < MIN_VALID_C:
        return "reads %.1f °C: a disconnected or power-gated sensor" % temp_c
    if temp_c > MAX_VALID_C:
        return "reads %.1f °C, above %.0f °C: a faulty sensor" % (temp_c, MAX_VALID_C)
    return None


def covers_cpu(zone_type: Optional[str]) -> bool:
    """Whether a zone of this type measures the CPU (CPU_ZONE)."""
    return bool(zone_type and CPU_ZONE.search(zone_type))


def read_thermal_zones(host: Host) -> List[Dict[str, Any]]:
    """[{"zone": "thermal_zone0", "type": "cpu-thermal" | None, "temp_c": float | None,
    "cpu": bool, "reason": str (only when temp_c is None)}], in zone order."""
    zones = []
    for zone in host.list_sys("class/thermal", r"thermal_zone\d+"):
        raw = host.sys_text("class/thermal/%s/temp" % zone)
        temp = parse_millidegrees(raw)
        zone_type = (host.sys_text("class/thermal/%s/type" % zone) or "").strip() or None
        entry: Dict[str, Any] = {"zone": zone, "type": zone_type, "temp_c": temp}
        entry["cpu"] = covers_cpu(zone_type)
        reason = (
            invalid_reading(temp)
            if temp is not None
            else "temp unreadable"
            if raw is None
            else "temp not an integer: %r" % raw.strip()[:40]
        )
        if reason:
            entry["temp_c"], entry["reason"] = None, reason
        zones.append(entry)
    return zones


def select_zone(zones: List[Dict[str, Any]], zone_type: str) -> Tuple[Optional[float], str, Optional[str]]:
    """(°C, "zoneN:type" watched, why None) from read_thermal_zones' list.

    The named zone type when it reads validly; otherwise (no name, or the named zone invalid)
    the hottest valid zone, provided a valid zone covers the CPU. None only when no valid zone
    covers the CPU (and the named zone is not valid): the reason lists what each zone read."""
    valid = [z for z in zones if z.get("temp_c") is not None]
    named = [z for z in valid if zone_type and z.get("type") == zone_type]
    if not named and any(z.get("cpu") for z in valid):
        named = valid
    if named:
        best = max(named, key=lambda z: z["temp_c"])
        return best["temp_c"], "%s:%s" % (best["zone"], best["type"]), None
    if not zones:
        return None, zone_type or "hottest", "no thermal zones"
    invalid = "; ".join(
        "%s (%s) %s" % (z["zone"], z.get("type"), z["reason"]) for z in zones if z.get("reason")
    )
    why = "no valid thermal zone covers the CPU" + (": " + invalid if invalid else "")
    if zone_type and not any(z.get("type") == zone_type for z in zones):
        why = "no thermal zone %r and %s" % (zone_type, why)
    return None, zone_type or "hottest", why


def zone_temperature_c(host: Host, zone_type: str) -> Tuple[Optional[float], str, Optional[str]]:
    """The watched zone's temperature now (select_zone): (°C, zone, why None)."""
    return select_zone(read_thermal_zones(host), zone_type)
