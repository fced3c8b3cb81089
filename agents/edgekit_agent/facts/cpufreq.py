"""CPU clocks and governors: /sys/devices/system/cpu/cpuN/cpufreq/ (kHz integers)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from edgekit_agent.host import Host, parse_int


def parse_governor(text: Optional[str]) -> Optional[str]:
    """scaling_governor: one word and a newline ("schedutil\\n" -> "schedutil")."""
    return text.strip() if text else None


def read_cpufreq(host: Host) -> List[Dict[str, Any]]:
    """One entry per CPU that has a cpufreq directory: governor and cur/min/max in kHz."""
    readings = []
    for cpu in host.list_sys("devices/system/cpu", r"cpu\d+"):
        base = "devices/system/cpu/%s/cpufreq/" % cpu
        governor = host.sys_text(base + "scaling_governor")
        if governor is None and not os.path.isdir(host.sys_path(base)):
            continue
        readings.append(
            {
                "cpu": int(cpu[3:]),
                "governor": parse_governor(governor),
                # cpuinfo_cur_freq is root-only; scaling_cur_freq is world-readable.
                "cur_khz": parse_int(host.sys_text(base + "scaling_cur_freq")),
                "min_khz": parse_int(host.sys_text(base + "scaling_min_freq")),
                "max_khz": parse_int(host.sys_text(base + "scaling_max_freq")),
            }
        )
    return readings
