"""Online CPUs: /sys/devices/system/cpu/online."""

from __future__ import annotations

from typing import List, Optional

from edgekit_agent.host import Host


def parse_cpu_list(text: Optional[str]) -> Optional[List[int]]:
    """Kernel cpu lists such as "0-3" or "0,2-3" (Documentation/admin-guide/cputopology.rst)."""
    if text is None or not text.strip():
        return None
    cpus: List[int] = []
    try:
        for part in text.strip().split(","):
            if "-" in part:
                first, last = part.split("-", 1)
                cpus.extend(range(int(first), int(last) + 1))
            else:
                cpus.append(int(part))
    except ValueError:
        return None
    return cpus


def read_cores_online(host: Host) -> Optional[List[int]]:
    return parse_cpu_list(host.sys_text("devices/system/cpu/online"))
