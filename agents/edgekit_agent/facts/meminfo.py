"""Memory totals: /proc/meminfo."""

from __future__ import annotations

import re
from typing import Dict, Optional

from edgekit_agent.host import Host


def parse_meminfo(text: Optional[str]) -> Dict[str, int]:
    """/proc/meminfo lines "MemTotal:  3884096 kB" -> {"MemTotal": bytes}."""
    values: Dict[str, int] = {}
    for line in (text or "").splitlines():
        match = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?\s*$", line)
        if match:
            factor = 1024 if line.rstrip().endswith("kB") else 1
            values[match.group(1)] = int(match.group(2)) * factor
    return values


def read_meminfo(host: Host) -> Dict[str, int]:
    return parse_meminfo(host.read_text(host.proc_path("meminfo")))
