"""A sysfs tree shaped like the board a profile describes, for an emulated board's chroot.

The host's real /sys cannot go into the chroot (onnxruntime's CPU detection crashes on an x86
sysfs under emulation), and it would describe the wrong machine anyway. This tree has the
board's CPUs with cpufreq, its thermal zone, the Raspberry Pi firmware's throttle attribute and,
for `ina3221:RAIL` power sensors (Jetson), an INA3221 hwmon device in the kernel's units
(millivolts, milliamperes). Values are fixed and plausible: an emulated board has no sensors.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.core.profiles import DeviceProfile
from edgekit.lab.sysfs_tree import make_fake_sysfs, write_sysfs_value

BOARD_TEMP_MILLIDEG = 45000
RAIL_MILLIVOLTS = 5000
RAIL_MILLIAMPS = 900


def make_board_sysfs(root: Path, profile: DeviceProfile) -> Path:
    zone = profile.sensors.thermal_zone or "cpu-thermal"
    make_fake_sysfs(
        root,
        thermal_zones=((zone, BOARD_TEMP_MILLIDEG),),
        cpus=profile.facts.cores or 4,
        governor="performance",
    )
    if profile.sensors.throttle == "rpi-firmware":
        write_sysfs_value(root, "devices/platform/soc/soc:firmware/get_throttled", "0")
    rails = [name.split(":", 1)[1] for name in profile.sensors.power if name.startswith("ina3221:")]
    if rails:
        base = "class/hwmon/hwmon0"
        write_sysfs_value(root, f"{base}/name", "ina3221")
        for channel, rail in enumerate(rails, start=1):
            write_sysfs_value(root, f"{base}/in{channel}_label", rail)
            write_sysfs_value(root, f"{base}/in{channel}_input", RAIL_MILLIVOLTS)
            write_sysfs_value(root, f"{base}/curr{channel}_input", RAIL_MILLIAMPS)
    return root
