"""Pure parsers of NVIDIA Jetson tools' output: `nvpmodel -q`, `jetson_clocks --show` and
`tegrastats` lines. Formats and sources: docs/reference/jetson-tools.md (recorded outputs of
JetPack 4, 5 and 6 boards) and docs/reference/sensor-formats.md §3c-3d. Nothing here runs a tool.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

POWER_MODE = re.compile(r"NV Power Mode: (\S+)")
CLOCK_LINE = re.compile(r"^(\S+?):?\s+.*?MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)")
ROOT_ERROR = "as a root user"  # "Error: Run this script(/usr/bin/jetson_clocks) as a root user"
OFFLINE_TEMP_C = -256.0  # tegrastats prints a power-gated sensor as name@-256C


def parse_nvpmodel(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """`nvpmodel -q` (or `-q --verbose`): {"mode": "25W", "id": 1}, None without a mode line.

    The mode line is "NV Power Mode: NAME" (with --verbose inside "NVPM VERB: Current mode: ..."),
    the id the next all-digit line; "NVPM WARN"/"NVPM VERB" lines may come between. Ids are per
    board (/etc/nvpmodel.conf)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for index, line in enumerate(lines):
        match = POWER_MODE.search(line)
        if match:
            ids = [int(rest) for rest in lines[index + 1 :] if re.fullmatch(r"\d+", rest)]
            return {"mode": match.group(1), "id": ids[0] if ids else None}
    return None


def parse_jetson_clocks(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """`jetson_clocks --show` (needs root): the clocks and whether jetson_clocks is on.

    Returns {"on": bool | None, "cpus": {"cpu0": {"min_khz", "max_khz", "cur_khz"}}, "gpu" and
    "emc": {"min_hz", "max_hz", "cur_hz"} | None, "power_mode": str | None, "soc_family",
    "machine"}; "on" is true when every listed CPU and the GPU run with MinFreq == MaxFreq (the
    rule jetson_stats uses), None when nothing was listed. Without root the tool prints only an
    error: {"on": None, "reason": that line}. None for empty text."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None
    for line in lines:
        if ROOT_ERROR in line:
            return {"on": None, "reason": line}
    cpus: Dict[str, Dict[str, int]] = {}
    clocks: Dict[str, Dict[str, int]] = {}
    info: Dict[str, Any] = {"soc_family": None, "machine": None, "power_mode": None}
    for line in lines:
        soc = re.match(r"SOC family:(\S+)\s+Machine:(.*)$", line)
        if soc:
            info["soc_family"], info["machine"] = soc.group(1), soc.group(2).strip()
            continue
        mode = POWER_MODE.match(line)
        if mode:
            info["power_mode"] = mode.group(1)
            continue
        match = CLOCK_LINE.match(line)
        if not match:
            continue
        name, low, high, current = match.group(1), *(int(v) for v in match.groups()[1:])
        if re.fullmatch(r"cpu\d+", name):
            cpus[name] = {"min_khz": low, "max_khz": high, "cur_khz": current}
        elif name in ("GPU", "EMC"):
            clocks[name.lower()] = {"min_hz": low, "max_hz": high, "cur_hz": current}
    locked = [c["min_khz"] == c["max_khz"] for c in cpus.values()]
    if "gpu" in clocks:
        locked.append(clocks["gpu"]["min_hz"] == clocks["gpu"]["max_hz"])
    return dict(
        info, on=all(locked) if locked else None, cpus=cpus, gpu=clocks.get("gpu"), emc=clocks.get("emc")
    )


def _frequencies(text: Optional[str]) -> List[int]:
    """ "1300" or "[305,0]" (MHz, per GPC on newer builds) -> [1300] / [305, 0]."""
    return [int(v) for v in re.findall(r"\d+", text or "")]


def parse_tegrastats(line: str) -> Optional[Dict[str, Any]]:
    """One tegrastats line -> {"timestamp", "ram_used_mb", "ram_total_mb", "swap_used_mb",
    "swap_total_mb", "cpus": [{"load_pct", "freq_mhz"} | None (offline)], "gpu_load_pct",
    "gpu_freq_mhz": [MHz], "emc_load_pct", "temps_c": {name: °C | None (-256 = offline)},
    "rails_mw": {name: {"instant": mW, "average": mW}}}; None when the line has no RAM field.

    Units: RAM/SWAP MB; CPU/GPU/EMC frequencies MHz; rails mW (JetPack 4 prints them without the
    unit, JetPack 5+ with "mW"). Unknown tokens are skipped (fields differ by board, JetPack and
    whether tegrastats runs as root). RAM is system-wide: on Jetson the GPU shares it."""
    ram = re.search(r"\bRAM (\d+)/(\d+)MB", line)
    if not ram:
        return None
    stamp = re.match(r"(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d) ", line)
    swap = re.search(r"\bSWAP (\d+)/(\d+)MB", line)
    cpus: List[Optional[Dict[str, Any]]] = []
    cpu = re.search(r"\bCPU \[([^\]]*)\]", line)
    for core in cpu.group(1).split(",") if cpu else []:
        load = re.fullmatch(r"(\d+)%(?:@(\d+))?", core.strip())
        cpus.append(
            {"load_pct": int(load.group(1)), "freq_mhz": int(load.group(2)) if load.group(2) else None}
            if load
            else None
        )
    gpu = re.search(r"\bGR3D_FREQ (\d+)%(?:@(\[[\d,]+\]|\d+))?", line)
    emc = re.search(r"\bEMC_FREQ (\d+)%", line)
    temps: Dict[str, Optional[float]] = {}
    for name, value in re.findall(r"\b([A-Za-z][\w]*)@(-?[\d.]+)C\b", line):
        celsius = float(value)
        temps[name] = None if celsius == OFFLINE_TEMP_C else celsius
    rails = {
        name: {"instant": int(now), "average": int(average)}
        for name, now, average in re.findall(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?\b", line)
        if name not in ("RAM", "SWAP")
    }
    return {
        "timestamp": stamp.group(1) if stamp else None,
        "ram_used_mb": int(ram.group(1)),
        "ram_total_mb": int(ram.group(2)),
        "swap_used_mb": int(swap.group(1)) if swap else None,
        "swap_total_mb": int(swap.group(2)) if swap else None,
        "cpus": cpus,
        "gpu_load_pct": int(gpu.group(1)) if gpu else None,
        "gpu_freq_mhz": _frequencies(gpu.group(2)) if gpu else [],
        "emc_load_pct": int(emc.group(1)) if emc else None,
        "temps_c": temps,
        "rails_mw": rails,
    }
