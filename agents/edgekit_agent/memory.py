"""This process's resident memory: now (VmRSS) and at its peak (VmHWM), in bytes."""

from __future__ import annotations

import sys
from typing import Optional, Tuple

from edgekit_agent.facts.meminfo import parse_meminfo
from edgekit_agent.host import Host


def read_status_bytes(field: str) -> Optional[int]:
    """VmRSS / VmHWM of this process from the real /proc (not the fake device tree)."""
    return parse_meminfo(Host.read_text("/proc/self/status")).get(field)


def current_rss() -> Optional[int]:
    """Resident memory now: procfs, else psutil when installed (hosts without /proc)."""
    value = read_status_bytes("VmRSS")
    if value is None:
        try:
            import psutil

            value = int(psutil.Process().memory_info().rss)
        except Exception:
            value = None
    return value


def peak_rss() -> Tuple[Optional[int], str]:
    """(peak resident bytes, where it came from: "procfs:VmHWM", "getrusage" or "unavailable")."""
    value = read_status_bytes("VmHWM")
    if value is not None:
        return value, "procfs:VmHWM"
    try:
        import resource

        factor = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * factor, "getrusage"
    except (ImportError, OSError):
        return None, "unavailable"
