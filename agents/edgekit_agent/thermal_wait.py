"""Wait for the board to cool below a temperature before the timed window."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

from edgekit_agent.host import Host
from edgekit_agent.sensors.thermal import read_thermal_zones, select_zone, zone_temperature_c

THERMAL_POLL_S = 1.0


def wait_until_cool(
    host: Host,
    zone_type: str,
    max_c: float,
    timeout_s: float,
    poll_s: float,
    progress: Callable[[Dict[str, Any]], None],
) -> Dict[str, Any]:
    """Wait until the zone (select_zone: a valid reading, never a gated sensor's -256 °C) is
    below max_c (°C); timeout_s and poll_s in seconds. On timeout the run goes on and says so (the
    host marks it suspect): a benchmark that never starts helps no one, a flagged one can be
    judged. Zones that read only invalid values never meet it ("met": False, the reason why; the
    host marks that run suspect too); a board without thermal zones cannot tell ("met": None, not
    suspect, as a board without a throttle source)."""
    started = time.monotonic()
    zones = read_thermal_zones(host)
    temp, zone, why = select_zone(zones, zone_type)

    def outcome(met: Optional[bool], timed_out: bool = False) -> Dict[str, Any]:
        record = {
            "max_start_temp_c": max_c,
            "zone": zone,
            "start_temp_c": temp,
            "waited_s": round(time.monotonic() - started, 3),
            "timed_out": timed_out,
            "met": met,
        }
        if temp is None:
            record["reason"] = why
        return record

    if temp is None:
        return outcome(False if zones else None)
    while temp >= max_c:
        elapsed = time.monotonic() - started
        if elapsed >= timeout_s:
            return outcome(False, timed_out=True)
        progress(
            {
                "phase": "cooldown",
                "temp_c": temp,
                "max_start_temp_c": max_c,
                "message": "%s at %.1f C, waiting for < %.1f C (%.0f/%.0f s)"
                % (zone, temp, max_c, elapsed, timeout_s),
            }
        )
        time.sleep(poll_s)
        temp, zone, why = zone_temperature_c(host, zone_type)
        if temp is None:  # the zones went invalid while waiting: not met
            return outcome(False)
    return outcome(True)
