"""The `sensors` op's snapshot, also taken right before and after a bench's timed window."""

from __future__ import annotations

import time
from typing import Any, Dict

from edgekit_agent.facts.cpufreq import read_cpufreq
from edgekit_agent.facts.nvpmodel import read_nvpmodel
from edgekit_agent.facts.throttle import read_throttled
from edgekit_agent.host import Host
from edgekit_agent.sensors.thermal import read_thermal_zones


def sensors_snapshot(host: Host) -> Dict[str, Any]:
    zones = read_thermal_zones(host)
    temps = [z["temp_c"] for z in zones if z["temp_c"] is not None]
    return {
        "thermal_zones": zones,
        "cpufreq": read_cpufreq(host),
        "throttled": read_throttled(host),
        "nvpmodel": read_nvpmodel(),
        "max_temp_c": max(temps) if temps else None,
        "time_unix": time.time(),
    }
