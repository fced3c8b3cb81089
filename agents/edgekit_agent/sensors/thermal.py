"""Thermal zones: /sys/class/thermal/thermal_zoneN/{temp,type}."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from edgekit_agent.host import Host, parse_int


def parse_millidegrees(text: Optional[str]) -> Optional[float]:
    """thermal_zone*/temp is millidegrees Celsius ("48312\\n" -> 48.312)."""
    value = parse_int(text)
    return None if value is None else value / 1000.0


def read_thermal_zones(host: Host) -> List[Dict[str, Any]]:
    """[{"zone": "thermal_zone0", "type": "cpu-thermal" | None, "temp_c": float | None}], in zone order."""
    zones = []
    for zone in host.list_sys("class/thermal", r"thermal_zone\d+"):
        temp = parse_millidegrees(host.sys_text("class/thermal/%s/temp" % zone))
        zone_type = (host.sys_text("class/thermal/%s/type" % zone) or "").strip() or None
        zones.append({"zone": zone, "type": zone_type, "temp_c": temp})
    return zones


def zone_temperature_c(host: Host, zone_type: str) -> Tuple[Optional[float], str]:
    """The watched zone's temperature (the hottest zone when zone_type is "")."""
    temps = [
        (zone["temp_c"], "%s:%s" % (zone["zone"], zone["type"]))
        for zone in read_thermal_zones(host)
        if zone["temp_c"] is not None and (not zone_type or zone["type"] == zone_type)
    ]
    if not temps:
        return None, zone_type or "hottest"
    return max(temps)
