"""The CPU's name: /proc/cpuinfo."""

from __future__ import annotations

from typing import Dict, Optional

from edgekit_agent.host import Host

# ARM CPU part numbers (arch/arm64/include/asm/cputype.h), the ones edge boards carry.
ARM_CPU_PARTS = {
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD41: "Cortex-A78",
    0xD42: "Cortex-A78AE",
    0xD44: "Cortex-X1",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD4B: "Cortex-A78C",
    0xC07: "Cortex-A7",
    0xC09: "Cortex-A9",
    0xC0F: "Cortex-A15",
}


def parse_cpu_model(text: Optional[str]) -> Optional[str]:
    """CPU name from /proc/cpuinfo: x86 "model name", else ARM "CPU part" (+ "Hardware")."""
    fields: Dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    if fields.get("model name"):
        return fields["model name"]
    part = fields.get("CPU part")
    if part:
        try:
            name = ARM_CPU_PARTS.get(int(part, 16), "ARM part %s" % part)
        except ValueError:
            name = None
        if name:
            hardware = fields.get("Hardware")
            return "%s (%s)" % (name, hardware) if hardware else name
    return fields.get("Hardware") or fields.get("Processor") or None


def read_cpu_model(host: Host) -> Optional[str]:
    return parse_cpu_model(host.read_text(host.proc_path("cpuinfo")))
