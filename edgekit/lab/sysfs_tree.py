"""A fake sysfs tree in the kernel's exact file formats: one ASCII value and a trailing newline
per attribute (Linux Documentation/ABI/testing/sysfs-class-thermal and sysfs-devices-system-cpu;
docs/reference/sensor-formats.md). Emulated boards (`edgekit lab`) get their /sys from here, and
the tests use it for boards this machine is not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def write_sysfs_value(root: Path, relative: str, value: str | int) -> Path:
    """One sysfs attribute: the value and a trailing newline, as the kernel writes it. Replaced
    atomically, so a reader polling the file while a test changes it never sees it half-written
    (a real sysfs read never is)."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(f"{value}\n")
    os.replace(partial, path)
    return path


def make_fake_sysfs(
    root: Path,
    *,
    thermal_zones: Sequence[tuple[str, int]] = (("cpu-thermal", 48312),),
    cpus: int = 4,
    governor: str = "ondemand",
    cur_khz: int = 1500000,
    min_khz: int = 600000,
    max_khz: int = 1800000,
) -> Path:
    """A sysfs tree with thermal zones (type, millidegrees C) and per-CPU cpufreq."""
    for index, (zone_type, millideg) in enumerate(thermal_zones):
        write_sysfs_value(root, f"class/thermal/thermal_zone{index}/type", zone_type)
        write_sysfs_value(root, f"class/thermal/thermal_zone{index}/temp", millideg)
    write_sysfs_value(root, "devices/system/cpu/online", f"0-{cpus - 1}" if cpus > 1 else "0")
    for cpu in range(cpus):
        base = f"devices/system/cpu/cpu{cpu}/cpufreq"
        write_sysfs_value(root, f"{base}/scaling_governor", governor)
        write_sysfs_value(root, f"{base}/scaling_cur_freq", cur_khz)
        write_sysfs_value(root, f"{base}/scaling_min_freq", min_khz)
        write_sysfs_value(root, f"{base}/scaling_max_freq", max_khz)
    return root
