"""All facts for `hello` (docs/protocol.md), from the readers beside their parsers."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any, Dict

from edgekit_agent.facts.board_model import read_board_model
from edgekit_agent.facts.cpufreq import read_cpufreq
from edgekit_agent.facts.cpuinfo import read_cpu_model
from edgekit_agent.facts.cpus import read_cores_online
from edgekit_agent.facts.disk import disk_free_bytes
from edgekit_agent.facts.emulation import read_emulation
from edgekit_agent.facts.meminfo import read_meminfo
from edgekit_agent.facts.nvpmodel import jetson_facts
from edgekit_agent.facts.packages import package_version, read_runtime_versions
from edgekit_agent.facts.throttle import read_throttled
from edgekit_agent.host import Host
from edgekit_agent.sensors.thermal import read_thermal_zones


def device_facts(host: Host, workdir: str = "~") -> Dict[str, Any]:
    cpufreq = read_cpufreq(host)
    first = cpufreq[0] if cpufreq else {}
    meminfo = read_meminfo(host)
    zones = read_thermal_zones(host)
    emulation = read_emulation(host)
    return {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "system": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpu_model": read_cpu_model(host),
        "cores": os.cpu_count(),
        "cores_online": read_cores_online(host),
        "memory_total_bytes": meminfo.get("MemTotal"),
        "memory_available_bytes": meminfo.get("MemAvailable"),
        "workdir": os.path.expanduser(workdir),
        "disk_free_bytes": disk_free_bytes(os.path.expanduser(workdir)),
        "board_model": read_board_model(host),
        "governor": first.get("governor"),
        "cur_freq_khz": first.get("cur_khz"),
        "max_freq_khz": first.get("max_khz"),
        "runtimes": read_runtime_versions(),
        "numpy": package_version("numpy"),
        "temperatures_c": {"%s:%s" % (z["zone"], z["type"]): z["temp_c"] for z in zones},
        "throttled": read_throttled(host),
        "emulated": emulation is not None,
        "emulation": emulation,
        **jetson_facts(),
    }
