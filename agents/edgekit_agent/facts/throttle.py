"""Raspberry Pi firmware throttling: the get_throttled sysfs file, else `vcgencmd get_throttled`."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any, Dict, Optional

from edgekit_agent.host import Host

# Raspberry Pi firmware get_throttled bits (vcgencmd(1), raspberrypi/documentation).
THROTTLE_BITS = {
    0: "under_voltage",
    1: "arm_freq_capped",
    2: "throttled",
    3: "soft_temp_limit",
    16: "under_voltage_occurred",
    17: "arm_freq_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temp_limit_occurred",
}


def parse_throttled(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """ "throttled=0x50000" (vcgencmd) or "50000" / "0x50000" (sysfs) -> decoded bits."""
    if text is None:
        return None
    match = re.fullmatch(r"(?:throttled=)?(0x[0-9a-fA-F]+|[0-9a-fA-F]+)", text.strip())
    if not match:
        return None
    try:
        bits = int(match.group(1), 16)
    except ValueError:
        return None
    flags = [name for bit, name in sorted(THROTTLE_BITS.items()) if bits & (1 << bit)]
    # "now" bits 1-3 mean the clocks are held down at this moment.
    return {"raw": "0x%x" % bits, "flags": flags, "throttled_now": bool(bits & 0b1110)}


def read_throttled(host: Host) -> Dict[str, Any]:
    """{"value": throttled now or None, "source": where from, ...decoded bits or "reason"}."""
    sysfs_text = host.sys_text("devices/platform/soc/soc:firmware/get_throttled")
    decoded = parse_throttled(sysfs_text)
    if decoded is not None:
        return {"value": decoded["throttled_now"], "source": "rpi-firmware-sysfs", **decoded}
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        try:
            output = subprocess.run(
                [vcgencmd, "get_throttled"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=2,
                check=False,
            )
            decoded = parse_throttled(output.stdout.decode("utf-8", "replace"))
        except (OSError, subprocess.SubprocessError) as exc:
            return {"value": None, "source": "vcgencmd", "reason": "vcgencmd failed: %s" % exc}
        if output.returncode == 0 and decoded is not None:
            return {"value": decoded["throttled_now"], "source": "vcgencmd", **decoded}
        return {
            "value": None,
            "source": "vcgencmd",
            "reason": "vcgencmd get_throttled failed (exit %d)" % output.returncode,
        }
    return {"value": None, "source": None, "reason": "no throttle source on this board"}
