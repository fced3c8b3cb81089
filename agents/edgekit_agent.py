#!/usr/bin/env python3
"""edgekit device agent: one file, Python >= 3.8, stdlib + numpy + one inference runtime.

Speaks JSON lines on stdin/stdout (protocol 1, see docs/protocol.md); logs go to stderr.
Benchmarks run in a child process (this file with --bench-child) so that peak RSS is the
model's own and a crashing runtime becomes an error reply instead of a dead agent.

Every sysfs/procfs read goes through a root prefix (--sysfs-root, --procfs-root) so tests can
point the agent at fake trees in the kernel's exact formats. Each fact is a tiny reader plus a
pure parser (the parsers are unit-tested on recorded formats).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

AGENT_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20
PROGRESS_INTERVAL_S = 0.5
STDERR_TAIL_LINES = 20
TEST_CRASH_ENV = "EDGEKIT_AGENT_TEST_CRASH"  # test hook: the bench child kills itself with this signal

# Written by `edgekit lab up` into an emulated board's root filesystem (qemu user-mode emulation):
# that board's facts say "emulated", so its timings are never mistaken for the real board's.
EMULATION_MARKER = "/etc/edgekit-emulation.json"

RUNTIME_PACKAGES = {
    "onnxruntime": "onnxruntime",
    "tflite_runtime": "tflite-runtime",
    "ai_edge_litert": "ai-edge-litert",
}


class AgentFailure(Exception):
    """An error that becomes an error reply of the given protocol type."""

    def __init__(self, error_type: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.data = data

    def to_reply(self) -> Dict[str, Any]:
        return {"type": self.error_type, "message": self.message, "data": self.data}


def log(message: str) -> None:
    sys.stderr.write("edgekit-agent: %s\n" % message)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Pure parsers (recorded kernel / firmware formats; see shared/reference/sensor-formats.md)
# ---------------------------------------------------------------------------------------------


def parse_int(text: Optional[str]) -> Optional[int]:
    """A sysfs integer attribute: one ASCII value and a trailing newline."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_millidegrees(text: Optional[str]) -> Optional[float]:
    """thermal_zone*/temp is millidegrees Celsius ("48312\\n" -> 48.312)."""
    value = parse_int(text)
    return None if value is None else value / 1000.0


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


def parse_meminfo(text: Optional[str]) -> Dict[str, int]:
    """/proc/meminfo lines "MemTotal:  3884096 kB" -> {"MemTotal": bytes}."""
    values: Dict[str, int] = {}
    for line in (text or "").splitlines():
        match = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?\s*$", line)
        if match:
            factor = 1024 if line.rstrip().endswith("kB") else 1
            values[match.group(1)] = int(match.group(2)) * factor
    return values


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


def parse_device_tree_string(raw: Optional[bytes]) -> Optional[str]:
    """Device-tree string properties are NUL-terminated with no newline."""
    if raw is None:
        return None
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return text or None


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


# ---------------------------------------------------------------------------------------------
# Readers (I/O only; every failure -> None)
# ---------------------------------------------------------------------------------------------


class Host:
    """Where facts are read from: real / or a fake tree."""

    def __init__(self, sysfs_root: str = "/sys", procfs_root: str = "/proc") -> None:
        self.sysfs_root = sysfs_root
        self.procfs_root = procfs_root

    def sys_path(self, relative: str) -> str:
        return os.path.join(self.sysfs_root, relative.lstrip("/"))

    def proc_path(self, relative: str) -> str:
        return os.path.join(self.procfs_root, relative.lstrip("/"))

    @staticmethod
    def read_text(path: str) -> Optional[str]:
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as handle:
                return handle.read(1 << 20)
        except (OSError, ValueError):
            return None

    @staticmethod
    def read_bytes(path: str) -> Optional[bytes]:
        try:
            with open(path, "rb") as handle:
                return handle.read(1 << 16)
        except OSError:
            return None

    def sys_text(self, relative: str) -> Optional[str]:
        return self.read_text(self.sys_path(relative))

    def list_sys(self, relative: str, pattern: str) -> List[str]:
        try:
            names = os.listdir(self.sys_path(relative))
        except OSError:
            return []
        regex = re.compile(pattern)
        return sorted((n for n in names if regex.fullmatch(n)), key=_natural_key)


def _natural_key(name: str) -> Tuple[str, int]:
    match = re.match(r"^(.*?)(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


def read_thermal_zones(host: Host) -> List[Dict[str, Any]]:
    zones = []
    for zone in host.list_sys("class/thermal", r"thermal_zone\d+"):
        temp = parse_millidegrees(host.sys_text("class/thermal/%s/temp" % zone))
        zone_type = (host.sys_text("class/thermal/%s/type" % zone) or "").strip() or None
        zones.append({"zone": zone, "type": zone_type, "temp_c": temp})
    return zones


def read_cpufreq(host: Host) -> List[Dict[str, Any]]:
    readings = []
    for cpu in host.list_sys("devices/system/cpu", r"cpu\d+"):
        base = "devices/system/cpu/%s/cpufreq/" % cpu
        governor = host.sys_text(base + "scaling_governor")
        if governor is None and not os.path.isdir(host.sys_path(base)):
            continue
        readings.append(
            {
                "cpu": int(cpu[3:]),
                "governor": governor.strip() if governor else None,
                # cpuinfo_cur_freq is root-only; scaling_cur_freq is world-readable.
                "cur_khz": parse_int(host.sys_text(base + "scaling_cur_freq")),
                "min_khz": parse_int(host.sys_text(base + "scaling_min_freq")),
                "max_khz": parse_int(host.sys_text(base + "scaling_max_freq")),
            }
        )
    return readings


def read_throttled(host: Host) -> Dict[str, Any]:
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


def sensors_snapshot(host: Host) -> Dict[str, Any]:
    zones = read_thermal_zones(host)
    temps = [z["temp_c"] for z in zones if z["temp_c"] is not None]
    return {
        "thermal_zones": zones,
        "cpufreq": read_cpufreq(host),
        "throttled": read_throttled(host),
        "nvpmodel": read_nvpmodel(),
        "max_temp_c": max(temps) if temps else None,
        "time_unix": time.time(),
    }


def package_version(distribution: str) -> Optional[str]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return metadata.version(distribution)
    except Exception:
        return None


def disk_free_bytes(path: str) -> Optional[int]:
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        return shutil.disk_usage(probe or "/").free
    except OSError:
        return None


def parse_emulation(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """The emulation marker's JSON object (emulator, what board it stands for), None when absent."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"emulator": "unknown", "reason": "unreadable %s" % EMULATION_MARKER}
    return data if isinstance(data, dict) else {"emulator": "unknown"}


def device_facts(host: Host, workdir: str = "~") -> Dict[str, Any]:
    cpufreq = read_cpufreq(host)
    first = cpufreq[0] if cpufreq else {}
    meminfo = parse_meminfo(host.read_text(host.proc_path("meminfo")))
    zones = read_thermal_zones(host)
    emulation = parse_emulation(host.read_text(EMULATION_MARKER))
    return {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "system": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpu_model": parse_cpu_model(host.read_text(host.proc_path("cpuinfo"))),
        "cores": os.cpu_count(),
        "cores_online": parse_cpu_list(host.sys_text("devices/system/cpu/online")),
        "memory_total_bytes": meminfo.get("MemTotal"),
        "memory_available_bytes": meminfo.get("MemAvailable"),
        "workdir": os.path.expanduser(workdir),
        "disk_free_bytes": disk_free_bytes(os.path.expanduser(workdir)),
        "board_model": parse_device_tree_string(host.read_bytes(host.proc_path("device-tree/model"))),
        "governor": first.get("governor"),
        "cur_freq_khz": first.get("cur_khz"),
        "max_freq_khz": first.get("max_khz"),
        "runtimes": {name: package_version(dist) for name, dist in RUNTIME_PACKAGES.items()},
        "numpy": package_version("numpy"),
        "temperatures_c": {"%s:%s" % (z["zone"], z["type"]): z["temp_c"] for z in zones},
        "throttled": read_throttled(host),
        "emulated": emulation is not None,
        "emulation": emulation,
    }


# ---------------------------------------------------------------------------------------------
# Power and energy sensors: a pure parser per format + a small reader class per back end.
# Formats and units: shared/reference/sensor-formats.md (keys in [brackets] below).
# ---------------------------------------------------------------------------------------------

SENSOR_UNAVAILABLE = "SensorUnavailable"
SENSOR_GARBAGE = "SensorGarbage"
INA2XX_CHIPS = ("ina219", "ina220", "ina226", "ina230", "ina231")  # ina2xx driver names [INA2XX]
POWER_SENSOR_KINDS = ("ina3221", "ina3221x", "rpi5-pmic", "rapl", "command", *INA2XX_CHIPS)
DEFAULT_INTERVAL_S = 0.02
MIN_INTERVAL_S = 0.005
RAPL_INTERVAL_S = 0.05  # counters: exact differences; periodic reads only catch wraps (range/Pmax ~ minutes)
PMIC_INTERVAL_S = 0.05  # one pmic_read_adc costs ~23 ms of firmware time [ZEUS]
COMMAND_INTERVAL_S = 0.2
COMMAND_TIMEOUT_S = 5.0
# "NAME_A current(7)=6.22421000A" / "NAME_V volt(15)=0.86173300V" [ZEUS test]
PMIC_LINE = re.compile(r"^\s*(\S+?)_([AV])\s+(?:current|volt)\(\d+\)=([-+\d.eE]+)[AV]\s*$")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_sysfs_number(text: Optional[str], what: str) -> float:
    """One numeric sysfs attribute; garbage raises SensorGarbage (never a made-up 0)."""
    value = parse_int(text)
    if value is None:
        raise AgentFailure(SENSOR_GARBAGE, "%s: not an integer: %r" % (what, (text or "")[:40]), path=what)
    return float(value)


def parse_pmic_adc(text: str) -> Dict[str, float]:
    """`vcgencmd pmic_read_adc` (Pi 5) -> watts per rail: A x V paired by name, not by the
    index in parentheses, which differs between the two lines of a rail [ZEUS]. Voltage-only
    entries (EXT5V_V, BATT_V) carry no power."""
    amps: Dict[str, float] = {}
    volts: Dict[str, float] = {}
    for line in text.splitlines():
        match = PMIC_LINE.match(line)
        if match:
            (amps if match.group(2) == "A" else volts)[match.group(1)] = float(match.group(3))
    rails = {name: amps[name] * volts[name] for name in sorted(amps) if name in volts}
    if not rails:
        raise AgentFailure(SENSOR_GARBAGE, "pmic_read_adc printed no rail with both current and voltage")
    return rails


def parse_nvpmodel(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """`nvpmodel -q`: "NV Power Mode: MAXN" then the numeric id on the next line, possibly
    after "NVPM WARN" lines [JTOP nvpmodel.py]."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for index, line in enumerate(lines):
        match = re.match(r"^NV Power Mode: (\S+)", line)
        if match:
            ids = [int(rest) for rest in lines[index + 1 :] if re.fullmatch(r"\d+", rest)]
            return {"mode": match.group(1), "id": ids[0] if ids else None}
    return None


def parse_meter_output(text: str) -> float:
    """An external meter prints one number (W or cumulative J); the last number on the last
    non-empty line counts, so "power: 4.2 W" works too."""
    lines = [line for line in text.splitlines() if line.strip()]
    numbers = NUMBER.findall(lines[-1]) if lines else []
    if not numbers:
        raise AgentFailure(SENSOR_GARBAGE, "the meter command printed no number: %r" % text.strip()[:60])
    value = float(numbers[-1])
    if value != value or value in (float("inf"), float("-inf")):
        raise AgentFailure(SENSOR_GARBAGE, "the meter command printed %r" % numbers[-1])
    return value


def counter_delta(previous: float, current: float, max_range: Optional[float]) -> float:
    """Difference of two readings of a cumulative counter. With a range (RAPL
    max_energy_range_uj) a smaller reading wrapped: d = e2 + (range - e1) [PCAP]; without one
    (hwmon energy*_input, a meter's joules) it was reset, and the new reading counts from 0."""
    if current >= previous:
        return current - previous
    if max_range:
        return current + (max_range - previous)
    return current


def read_sensor_text(path: str) -> str:
    """Like Host.read_text but the reason survives: EACCES, ENODATA (disabled INA3221 channel)."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read(4096)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        code = errno_name(exc.errno)
        raise AgentFailure(
            SENSOR_UNAVAILABLE,
            "cannot read %s: %s%s" % (path, reason, " (%s)" % code if code else ""),
            path=path,
            errno=code,
        ) from None


def errno_name(number: Optional[int]) -> Optional[str]:
    return errno.errorcode.get(number) if number else None


class PowerReader:
    """One sensor. kind "power": read() -> watts now; kind "energy": read() -> cumulative
    joules since the reader opened (wraps and resets already unfolded)."""

    kind = "power"

    def __init__(self, name: str, source: str, interval_s: float, resolution: float) -> None:
        self.name = name
        self.source = source
        self.interval_s = interval_s
        self.resolution = resolution  # one quantisation step: watts (power) or joules (energy)

    def read(self) -> float:
        raise NotImplementedError

    def describe(self) -> Dict[str, Any]:
        return {
            "sensor": self.name,
            "kind": self.kind,
            "source": self.source,
            "interval_s": self.interval_s,
            "resolution": self.resolution,
        }


class FilePowerReader(PowerReader):
    """Watts = product of sysfs integers x scale (hwmon power1_input µW; IIO in_power mW;
    INA3221 in mV x curr mA)."""

    def __init__(
        self, name: str, paths: List[str], scale: float, interval_s: float, resolution: float
    ) -> None:
        super().__init__(name, " x ".join(paths), interval_s, resolution)
        self.paths = paths
        self.scale = scale

    def read(self) -> float:
        product = self.scale
        for path in self.paths:
            product *= parse_sysfs_number(read_sensor_text(path), path)
        return product


class CounterReader(PowerReader):
    """A cumulative counter unfolded into joules since the first read."""

    kind = "energy"

    def __init__(
        self,
        name: str,
        source: str,
        interval_s: float,
        resolution: float,
        fetch: Callable[[], float],
        joules_per_unit: float,
        max_range: Optional[float],
    ) -> None:
        super().__init__(name, source, interval_s, resolution)
        self.fetch = fetch
        self.joules_per_unit = joules_per_unit
        self.max_range = max_range
        self.last: Optional[float] = None
        self.total = 0.0

    def read(self) -> float:
        raw = self.fetch()
        if self.last is not None:
            self.total += counter_delta(self.last, raw, self.max_range)
        self.last = raw
        return self.total * self.joules_per_unit


class CommandPowerReader(PowerReader):
    """`vcgencmd pmic_read_adc` (rail sum or one rail) or an external meter printing watts."""

    def __init__(
        self, name: str, argv: List[str], parse: Callable[[str], float], interval_s: float, resolution: float
    ) -> None:
        super().__init__(name, " ".join(argv), interval_s, resolution)
        self.argv = argv
        self.parse = parse

    def read(self) -> float:
        return self.parse(run_sensor_command(self.argv))


def run_sensor_command(argv: List[str]) -> str:
    try:
        done = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AgentFailure(SENSOR_UNAVAILABLE, "%s failed: %s" % (argv[0], _first_line(exc))) from None
    output = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        detail = (done.stderr.decode("utf-8", "replace").strip() or output.strip())[:80]
        raise AgentFailure(
            SENSOR_UNAVAILABLE,
            "%s exited %d%s" % (" ".join(argv), done.returncode, ": " + detail if detail else ""),
        )
    return output


def split_spec(spec: str) -> Tuple[str, str]:
    kind, _, argument = spec.partition(":")
    return kind.strip(), argument.strip()


def hwmon_devices(host: Host, chip: str) -> List[Tuple[str, str]]:
    """(hwmon dir, I2C client) of every hwmon whose `name` is chip; indices vary, so match by
    name and by the realpath of the `device` link (e.g. 1-0040) [HW-ABI][pitfall 1]."""
    found = []
    for hwmon in host.list_sys("class/hwmon", r"hwmon\d+"):
        directory = host.sys_path("class/hwmon/" + hwmon)
        if (host.read_text(os.path.join(directory, "name")) or "").strip() == chip:
            client = os.path.basename(os.path.realpath(os.path.join(directory, "device")))
            found.append((directory, client))
    return found


def sysfs_interval_s(host: Host, path: str, default: float) -> float:
    """A chip's `update_interval` (ms) as a sampling period; faster polling repeats values."""
    millis = parse_int(host.read_text(path))
    return max(millis / 1000.0, MIN_INTERVAL_S) if millis and millis > 0 else default


def open_ina3221(host: Host, spec: str, label: str) -> PowerReader:
    """Upstream hwmon ina3221 (JetPack 5/6): no power file; P = inN mV x currN mA [INA3221-DOC]."""
    for directory, client in hwmon_devices(host, "ina3221"):
        for channel in (1, 2, 3):  # in4..7 are shunt voltages / their sum, never rails
            if (host.read_text(os.path.join(directory, "in%d_label" % channel)) or "").strip() != label:
                continue
            volts = os.path.join(directory, "in%d_input" % channel)
            amps = os.path.join(directory, "curr%d_input" % channel)
            interval = sysfs_interval_s(host, os.path.join(directory, "update_interval"), DEFAULT_INTERVAL_S)
            # Bus LSB 8 mV, current in whole mA: one step is about 8 mV x I + 1 mA x V; at 5 V, 1 A: 13 mW.
            reader = FilePowerReader(spec, [volts, amps], 1e-6, interval, 0.013)
            reader.source = "%s (%s)" % (reader.source, client)
            return reader
    raise AgentFailure(
        SENSOR_UNAVAILABLE, "no ina3221 hwmon with label %s under %s" % (label, host.sys_path("class/hwmon"))
    )


def open_ina3221x(host: Host, spec: str, rail: str) -> PowerReader:
    """JetPack 4 IIO ina3221x: rail_name_k names channel k, in_power{k}_input is mW [NV-INA]."""
    base = "bus/i2c/drivers/ina3221x"
    for client in host.list_sys(base, r"\d+-[0-9a-fA-F]+"):
        for device in host.list_sys("%s/%s" % (base, client), r"iio:device\d+|iio_device"):
            directory = host.sys_path("%s/%s/%s" % (base, client, device))
            for channel in (0, 1, 2):
                if (host.read_text(os.path.join(directory, "rail_name_%d" % channel)) or "").strip() == rail:
                    path = os.path.join(directory, "in_power%d_input" % channel)
                    return FilePowerReader(spec, [path], 1e-3, DEFAULT_INTERVAL_S, 0.001)
    raise AgentFailure(SENSOR_UNAVAILABLE, "no ina3221x rail %s under %s" % (rail, host.sys_path(base)))


def open_ina2xx(host: Host, spec: str, chip: str, client: str) -> PowerReader:
    """ina2xx hwmon: power1_input µW [INA2XX]. `ina226` = the only one, `ina226:1-0040` = by I2C client."""
    devices = [(d, c) for d, c in hwmon_devices(host, chip) if not client or c == client]
    if len(devices) != 1:
        where = host.sys_path("class/hwmon")
        if not devices:
            raise AgentFailure(
                SENSOR_UNAVAILABLE,
                "no %s hwmon%s under %s" % (chip, " at " + client if client else "", where),
            )
        raise AgentFailure(
            SENSOR_UNAVAILABLE,
            "%d %s hwmon devices (%s): name one, e.g. %s:%s"
            % (len(devices), chip, ", ".join(c for _, c in devices), chip, devices[0][1]),
        )
    directory, found_client = devices[0]
    interval = sysfs_interval_s(host, os.path.join(directory, "update_interval"), DEFAULT_INTERVAL_S)
    reader = FilePowerReader(spec, [os.path.join(directory, "power1_input")], 1e-6, interval, 0.0025)
    reader.source = "%s (%s)" % (reader.source, found_client)
    return reader


def open_rapl(host: Host, spec: str, zone_name: str) -> PowerReader:
    """powercap RAPL energy counter, matched by zone `name` (ids are hex and the order varies);
    intel-rapl-mmio mirrors the MSR package and would count twice [PCAP][RAPL-C]."""
    base = "class/powercap"
    for zone in host.list_sys(base, r"intel-rapl(:[0-9a-f]+)+"):
        directory = host.sys_path("%s/%s" % (base, zone))
        if (host.read_text(os.path.join(directory, "name")) or "").strip() != zone_name:
            continue
        return open_rapl_zone(spec, os.path.join(directory, "energy_uj"), directory)
    raise AgentFailure(
        SENSOR_UNAVAILABLE, "no powercap zone named %s under %s" % (zone_name, host.sys_path(base))
    )


def open_rapl_zone(spec: str, energy: str, directory: str) -> PowerReader:
    """One powercap zone's µJ counter; wraps unfold at max_energy_range_uj [PCAP]."""
    try:
        parse_sysfs_number(read_sensor_text(energy), energy)
    except AgentFailure as failure:
        if failure.data.get("errno") == "EACCES":  # commit 949dd0104c49, 5.10+ and stable [PCAP-C]
            failure.message = "%s: energy_uj is root-only (EACCES; CVE-2020-8694)" % spec
        raise
    max_range = parse_int(Host.read_text(os.path.join(directory, "max_energy_range_uj")))

    def fetch() -> float:
        return parse_sysfs_number(read_sensor_text(energy), energy)

    return CounterReader(
        spec, energy, RAPL_INTERVAL_S, 1e-6, fetch, 1e-6, float(max_range) if max_range else None
    )


def open_pmic(spec: str, rail: str) -> PowerReader:
    """Pi 5 PMIC ADC through vcgencmd: the sum of all rails, or one rail [ZEUS]."""
    vcgencmd = shutil.which("vcgencmd")
    if not vcgencmd:
        raise AgentFailure(SENSOR_UNAVAILABLE, "vcgencmd not found on PATH (rpi5-pmic needs it)")
    argv = [vcgencmd, "pmic_read_adc"]
    rails = parse_pmic_adc(run_sensor_command(argv))
    if rail and rail not in rails:
        raise AgentFailure(
            SENSOR_UNAVAILABLE, "pmic_read_adc has no rail %s (has %s)" % (rail, ", ".join(sorted(rails)))
        )

    def parse(text: str) -> float:
        values = parse_pmic_adc(text)
        if rail:
            if rail not in values:
                raise AgentFailure(SENSOR_GARBAGE, "pmic_read_adc lost rail %s" % rail)
            return values[rail]
        return sum(values.values())

    return CommandPowerReader(spec, argv, parse, PMIC_INTERVAL_S, 1e-4)


def open_command(spec: str, options: Dict[str, Any]) -> PowerReader:
    """An external meter (USB power meter, smart plug): the profile's power_command prints watts
    (unit "W") or cumulative joules (unit "J")."""
    argv = options.get("power_command")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise AgentFailure(SENSOR_UNAVAILABLE, "command: the profile gives no power_command")
    unit = options.get("power_command_unit", "W")
    resolved = shutil.which(argv[0]) or argv[0]
    interval = COMMAND_INTERVAL_S
    argv = [resolved, *argv[1:]]
    parse_meter_output(run_sensor_command(argv))  # fails now, not in the middle of the window
    if unit == "J":

        def fetch() -> float:
            return parse_meter_output(run_sensor_command(argv))

        return CounterReader(spec, " ".join(argv), interval, 1e-3, fetch, 1.0, None)
    if unit != "W":
        raise AgentFailure(SENSOR_UNAVAILABLE, "command: power_command_unit must be W or J, got %r" % unit)
    return CommandPowerReader(spec, argv, parse_meter_output, interval, 1e-3)


def open_power_sensor(host: Host, spec: str, options: Optional[Dict[str, Any]] = None) -> PowerReader:
    """The reader for a profile's sensor spec, or a typed failure with a human reason."""
    options = options or {}
    kind, argument = split_spec(spec)
    if kind == "ina3221":
        reader = open_ina3221(host, spec, argument)
    elif kind == "ina3221x":
        reader = open_ina3221x(host, spec, argument)
    elif kind in INA2XX_CHIPS:
        reader = open_ina2xx(host, spec, kind, argument)
    elif kind == "rapl":
        reader = open_rapl(host, spec, argument or "package-0")
    elif kind == "rpi5-pmic":
        reader = open_pmic(spec, argument)
    elif kind == "command":
        reader = open_command(spec, options)
    else:
        raise AgentFailure(
            SENSOR_UNAVAILABLE, "unknown sensor %r (kinds: %s)" % (spec, ", ".join(POWER_SENSOR_KINDS))
        )
    override = options.get("sample_interval_ms")
    if isinstance(override, (int, float)) and override > 0:  # the user knows the sensor: 1 ms floor only
        reader.interval_s = max(float(override) / 1000.0, 0.001)
    reader.read()  # a first read proves it works (and primes counters)
    return reader


def discover_power_sensors(host: Host) -> List[Dict[str, Any]]:
    """Every power sensor this board offers, each tried once (for `devices doctor`)."""
    specs: List[str] = []
    for directory, _client in hwmon_devices(host, "ina3221"):
        for channel in (1, 2, 3):
            label = (host.read_text(os.path.join(directory, "in%d_label" % channel)) or "").strip()
            if label and "NC" not in label.split():
                specs.append("ina3221:" + label)
    for chip in INA2XX_CHIPS:
        specs.extend("%s:%s" % (chip, client) for _, client in hwmon_devices(host, chip))
    base = "bus/i2c/drivers/ina3221x"
    for client in host.list_sys(base, r"\d+-[0-9a-fA-F]+"):
        for device in host.list_sys("%s/%s" % (base, client), r"iio:device\d+|iio_device"):
            for channel in (0, 1, 2):
                rail = (
                    host.sys_text("%s/%s/%s/rail_name_%d" % (base, client, device, channel)) or ""
                ).strip()
                if rail:
                    specs.append("ina3221x:" + rail)
    for zone in host.list_sys("class/powercap", r"intel-rapl(:[0-9a-f]+)+"):
        name = (host.sys_text("class/powercap/%s/name" % zone) or "").strip()
        if name:
            specs.append("rapl:" + name)
    if shutil.which("vcgencmd"):
        specs.append("rpi5-pmic")
    return check_power_sensors(host, specs, {})


def check_power_sensors(host: Host, specs: List[str], options: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Each named sensor: found and readable (with one reading), or the reason it is not."""
    checked = []
    for spec in specs:
        try:
            reader = open_power_sensor(host, spec, options)
            value = reader.read()
            checked.append(dict(reader.describe(), ok=True, value=value))
        except AgentFailure as failure:
            checked.append({"sensor": spec, "ok": False, "reason": failure.message})
    return checked


def read_nvpmodel() -> Optional[Dict[str, Any]]:
    """Jetson power mode, when nvpmodel exists (it needs no root for -q)."""
    nvpmodel = shutil.which("nvpmodel")
    if not nvpmodel:
        return None
    try:
        return parse_nvpmodel(run_sensor_command([nvpmodel, "-q"]))
    except AgentFailure as failure:
        return {"mode": None, "id": None, "reason": failure.message}


# ---------------------------------------------------------------------------------------------
# Runtimes (imported only in the bench child)
# ---------------------------------------------------------------------------------------------


class OnnxRuntimeModel:
    name = "onnxruntime"

    def __init__(self, path: str, threads: Optional[int]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise AgentFailure(
                "ModelLoadError", "onnxruntime cannot load %s: %s" % (path, _first_line(exc))
            ) from None
        self.version = ort.__version__
        self.threads = threads
        self.providers = self.session.get_providers()
        self.output_names = [o.name for o in self.session.get_outputs()]

    def input_names(self) -> List[str]:
        return [i.name for i in self.session.get_inputs()]

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        session, names = self.session, self.output_names

        def run() -> Any:
            return session.run(names, feeds)

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return [
            {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
            for name, value in zip(self.output_names, values)
        ]


class TFLiteModel:
    name = "tflite"

    def __init__(self, path: str, threads: Optional[int]) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter  # successor of tflite-runtime

            version = package_version("ai-edge-litert")
        except ImportError:
            try:
                from tflite_runtime.interpreter import Interpreter

                version = package_version("tflite-runtime")
            except ImportError:
                raise AgentFailure(
                    "RuntimeMissing", "no TFLite runtime: pip install ai-edge-litert"
                ) from None
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise AgentFailure(
                "ModelLoadError", "TFLite cannot load %s: %s" % (path, _first_line(exc))
            ) from None
        self.version = version
        self.threads = threads
        self.providers = ["CPU"]
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()

    def input_names(self) -> List[str]:
        return [d["name"] for d in self._inputs]

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        interpreter = self.interpreter
        for detail in self._inputs:
            value = feeds[detail["name"]]
            if list(detail["shape"]) != list(value.shape):
                interpreter.resize_tensor_input(detail["index"], list(value.shape))
        interpreter.allocate_tensors()
        pairs = [(d["index"], feeds[d["name"]]) for d in self._inputs]
        outputs = [d["index"] for d in self._outputs]

        def run() -> Any:
            for index, value in pairs:
                interpreter.set_tensor(index, value)
            interpreter.invoke()
            return [interpreter.get_tensor(i) for i in outputs]

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return [
            {"name": d["name"], "shape": list(v.shape), "dtype": str(v.dtype)}
            for d, v in zip(self._outputs, values)
        ]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def runtime_for(path: str, runtime: str) -> str:
    if runtime == "auto":
        return "tflite" if path.endswith(".tflite") else "onnxruntime"
    if runtime not in ("onnxruntime", "tflite"):
        raise AgentFailure("BadRequest", "unknown runtime %r (onnxruntime, tflite, auto)" % runtime)
    return runtime


def open_model(path: str, runtime: str, threads: Optional[int]) -> Any:
    if not os.path.isfile(path):
        raise AgentFailure("ArtifactNotFound", "no such artifact on the device: %s" % path, path=path)
    if runtime == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise AgentFailure(
                "RuntimeMissing", "onnxruntime is not installed: pip install onnxruntime"
            ) from None
        return OnnxRuntimeModel(path, threads)
    return TFLiteModel(path, threads)


def build_feeds(params: Dict[str, Any], input_names: List[str]) -> Dict[str, Any]:
    import numpy as np

    spec = params.get("inputs") or {}
    missing = [name for name in input_names if name not in spec]
    if missing:
        raise AgentFailure("InputError", "no input spec for %s" % ", ".join(missing), inputs=missing)
    inputs_file = params.get("inputs_file")
    arrays: Dict[str, Any] = {}
    if inputs_file:
        try:
            with np.load(inputs_file, allow_pickle=False) as data:
                arrays = {name: data[name] for name in input_names if name in data.files}
        except (OSError, ValueError) as exc:
            raise AgentFailure("InputError", "cannot read inputs file %s: %s" % (inputs_file, exc)) from None
    rng = np.random.default_rng(int(params.get("seed", 0)))
    feeds: Dict[str, Any] = {}
    for name in input_names:
        shape = [int(d) for d in spec[name]["shape"]]
        try:
            dtype = np.dtype(spec[name]["dtype"])
        except TypeError:
            raise AgentFailure(
                "InputError", "input %r: unknown dtype %r" % (name, spec[name]["dtype"])
            ) from None
        if inputs_file:
            if name not in arrays:
                raise AgentFailure("InputError", "inputs file has no array %r" % name, input=name)
            value = arrays[name]
            if value.ndim and shape:
                value = value[: shape[0]]
            feeds[name] = np.ascontiguousarray(value.astype(dtype, copy=False))
        elif dtype.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[name] = np.ones(shape, dtype=dtype)
        else:
            feeds[name] = np.ones(shape, dtype=dtype)
    return feeds


# ---------------------------------------------------------------------------------------------
# Energy measurement: a sampling thread, a pure summary, and the thermal wait before timing
# ---------------------------------------------------------------------------------------------

MIN_WINDOW_SAMPLES = 3
IDLE_MAX_SECONDS = 60.0  # the idle baseline matches the planned window, up to this long
THERMAL_POLL_S = 1.0
Sample = Tuple[float, float]  # (perf_counter seconds, watts or cumulative joules)


class PowerSampler:
    """Reads one sensor in a daemon thread every interval_s, sleeping on an Event in between,
    so the inference loop pays for one short read per interval and nothing else. start() and
    stop() each take a sample themselves, so the samples bracket the window."""

    def __init__(self, reader: PowerReader) -> None:
        self.reader = reader
        self.samples: List[Sample] = []
        self.error: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> None:
        try:
            t0 = time.perf_counter()
            value = self.reader.read()
            self.samples.append(((t0 + time.perf_counter()) / 2.0, value))
        except AgentFailure as failure:
            self.error = failure.message
            self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.reader.interval_s):
            self._sample()

    def start(self) -> None:
        """A new window. After a failed read the sensor stays failed: `error` says why."""
        self.samples = []
        if self.error is not None:
            return
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="edgekit-power", daemon=True)
        self._thread.start()

    def stop(self) -> List[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.error is None:
            self._sample()
        return self.samples


def window_power(samples: List[Sample], kind: str) -> Tuple[float, float]:
    """(time-weighted mean watts over the samples' span, its standard error).

    Power samples: trapezoid integration / span; standard error = sample std / sqrt(n).
    Energy counters: the exact counter difference / span; standard error from the scatter of
    the per-interval powers (dE/dt between consecutive reads) / sqrt(intervals)."""
    span = samples[-1][0] - samples[0][0]
    if span <= 0:
        raise ValueError("samples span no time")
    pairs = list(zip(samples, samples[1:]))  # noqa: RUF007 - itertools.pairwise is Python 3.10+
    if kind == "energy":
        mean = (samples[-1][1] - samples[0][1]) / span
        values = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in pairs if b[0] > a[0]]
    else:
        mean = sum((a[1] + b[1]) / 2.0 * (b[0] - a[0]) for a, b in pairs) / span
        values = [value for _, value in samples]
    count = len(values)
    average = sum(values) / count
    variance = sum((v - average) ** 2 for v in values) / (count - 1) if count > 1 else 0.0
    return mean, (variance / count) ** 0.5


def energy_summary(
    idle: List[Sample],
    busy: List[Sample],
    *,
    kind: str,
    window_s: float,
    inferences: int,
    resolution: float,
) -> Dict[str, Any]:
    """Energy per inference above idle, from an idle window and the timed window (pure).

    mj_per_inference = (P_busy - P_idle) x window_s / inferences x 1000, where P are
    time-weighted means. Its uncertainty (one standard uncertainty) combines, per mean, the
    standard error of the samples and the sensor's quantisation (one step / sqrt(12), which
    averaging does not shrink: a steady reading rounds the same way every time; for counters
    a step of the counter at each of the two endpoint reads), then the two means in quadrature
    (idle and busy are independent windows). Readings are autocorrelated, so the standard
    error is a floor rather than a bound."""
    if inferences < 1 or window_s <= 0:
        return {"mj_per_inference": None, "reason": "no timed inferences"}
    if len(idle) < MIN_WINDOW_SAMPLES or len(busy) < MIN_WINDOW_SAMPLES:
        return {
            "mj_per_inference": None,
            "reason": "too few power samples (idle %d, busy %d; need >= %d each): the sensor is "
            "slower than the window, lengthen --min-seconds" % (len(idle), len(busy), MIN_WINDOW_SAMPLES),
            "sample_count": len(busy),
            "idle_sample_count": len(idle),
        }
    try:
        busy_w, busy_se = window_power(busy, kind)
        idle_w, idle_se = window_power(idle, kind)
    except ValueError as exc:
        return {"mj_per_inference": None, "reason": "power samples unusable: %s" % exc}
    uncertainties = []
    for samples, se in ((busy, busy_se), (idle, idle_se)):
        span = samples[-1][0] - samples[0][0]
        quantum = resolution * 2**0.5 / span if kind == "energy" else resolution / 12**0.5
        uncertainties.append((se**2 + quantum**2) ** 0.5)
    above_idle_w = busy_w - idle_w
    scale = window_s / inferences * 1000.0
    return {
        "mj_per_inference": above_idle_w * scale,
        "mj_per_inference_uncertainty": (uncertainties[0] ** 2 + uncertainties[1] ** 2) ** 0.5 * scale,
        "total_energy_j": busy_w * window_s,
        "energy_above_idle_j": above_idle_w * window_s,
        "avg_power_w": busy_w,
        "idle_power_w": idle_w,
        "avg_power_uncertainty_w": uncertainties[0],
        "idle_power_uncertainty_w": uncertainties[1],
        "window_s": window_s,
        "idle_window_s": idle[-1][0] - idle[0][0],
        "inferences": inferences,
        "sample_count": len(busy),
        "idle_sample_count": len(idle),
        "method": "counter-difference" if kind == "energy" else "trapezoid",
    }


def open_first_power_sensor(
    host: Host, specs: List[str], options: Dict[str, Any]
) -> Tuple[Optional[PowerReader], List[str]]:
    """The first of the profile's sensors that works, and why the ones before it did not."""
    reasons = []
    for spec in specs:
        try:
            return open_power_sensor(host, spec, options), reasons
        except AgentFailure as failure:
            reasons.append(failure.message if spec in failure.message else "%s: %s" % (spec, failure.message))
    return None, reasons


def measured_energy(
    reader: Optional[PowerReader],
    sampler: Optional[PowerSampler],
    specs: List[str],
    failures: List[str],
    idle: List[Sample],
    busy: List[Sample],
    window_s: float,
    inferences: int,
) -> Dict[str, Any]:
    """The bench reply's "energy": a summary, or mj_per_inference None with the reason."""
    if reader is None or sampler is None:
        reason = "; ".join(failures) if failures else "profile names no power sensor"
        return {"mj_per_inference": None, "reason": reason, "sensors_tried": specs}
    summary: Dict[str, Any] = dict(reader.describe(), skipped=failures)
    if sampler.error is not None:
        summary.update(
            mj_per_inference=None, reason="%s failed during the run: %s" % (reader.name, sampler.error)
        )
        return summary
    summary.update(
        energy_summary(
            idle,
            busy,
            kind=reader.kind,
            window_s=window_s,
            inferences=inferences,
            resolution=reader.resolution,
        )
    )
    return summary


def zone_temperature_c(host: Host, zone_type: str) -> Tuple[Optional[float], str]:
    """The watched zone's temperature (the hottest zone when zone_type is "")."""
    temps = [
        (zone["temp_c"], "%s:%s" % (zone["zone"], zone["type"]))
        for zone in read_thermal_zones(host)
        if zone["temp_c"] is not None and (not zone_type or zone["type"] == zone_type)
    ]
    if not temps:
        return None, zone_type or "hottest"
    return max(temps)


def wait_until_cool(
    host: Host,
    zone_type: str,
    max_c: float,
    timeout_s: float,
    poll_s: float,
    progress: Callable[[Dict[str, Any]], None],
) -> Dict[str, Any]:
    """Wait until the zone is below max_c. On timeout the run goes on and says so (the host
    marks it suspect): a benchmark that never starts helps no one, a flagged one can be judged."""
    started = time.monotonic()
    temp, zone = zone_temperature_c(host, zone_type)
    if temp is None:
        return {
            "max_start_temp_c": max_c,
            "zone": zone,
            "start_temp_c": None,
            "waited_s": 0.0,
            "timed_out": False,
            "reason": "no thermal zone %r to watch" % (zone_type or "any"),
        }
    while temp >= max_c:
        elapsed = time.monotonic() - started
        if elapsed >= timeout_s:
            return {
                "max_start_temp_c": max_c,
                "zone": zone,
                "start_temp_c": temp,
                "waited_s": round(elapsed, 3),
                "timed_out": True,
            }
        progress(
            {
                "phase": "cooldown",
                "temp_c": temp,
                "max_start_temp_c": max_c,
                "message": "%s at %.1f C, waiting for < %.1f C (%.0f/%.0f s)"
                % (zone, temp, max_c, elapsed, timeout_s),
            }
        )
        time.sleep(poll_s)
        temp, zone = zone_temperature_c(host, zone_type)
        if temp is None:
            break
    return {
        "max_start_temp_c": max_c,
        "zone": zone,
        "start_temp_c": temp,
        "waited_s": round(time.monotonic() - started, 3),
        "timed_out": False,
    }


# ---------------------------------------------------------------------------------------------
# The bench child
# ---------------------------------------------------------------------------------------------


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
    value = read_status_bytes("VmHWM")
    if value is not None:
        return value, "procfs:VmHWM"
    try:
        import resource

        factor = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * factor, "getrusage"
    except (ImportError, OSError):
        return None, "unavailable"


class Emitter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, message: Dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def run_bench(params: Dict[str, Any], host: Host, emit: Callable[[Dict[str, Any]], None]) -> Dict[str, Any]:
    artifact = params.get("artifact")
    if not isinstance(artifact, str) or not artifact:
        raise AgentFailure("BadRequest", "bench needs params.artifact (a path on the device)")
    runs = int(params.get("runs", 100))
    warmup = int(params.get("warmup", 10))
    min_seconds = float(params.get("min_seconds", 2.0))
    max_seconds = float(params.get("max_seconds", 600.0))
    threads = params.get("threads")
    threads = int(threads) if threads else None

    crash = os.environ.get(TEST_CRASH_ENV)
    if crash:
        os.kill(os.getpid(), getattr(signal, crash))

    runtime = runtime_for(artifact, str(params.get("runtime", "auto")))
    started = time.perf_counter()
    emit({"event": "progress", "phase": "load", "done": 0, "total": 1, "elapsed_s": 0.0})
    # Import numpy and the runtime before the baseline so that only the model counts as its delta.
    import numpy  # noqa: F401

    if runtime == "onnxruntime":
        with contextlib.suppress(ImportError):  # open_model reports RuntimeMissing
            import onnxruntime  # noqa: F401
    baseline_rss = current_rss()

    t0 = time.perf_counter_ns()
    model = open_model(artifact, runtime, threads)
    load_ns = time.perf_counter_ns() - t0
    feeds = build_feeds(params, model.input_names())
    run = model.make_runner(feeds)
    t0 = time.perf_counter_ns()
    try:
        first_outputs = run()
    except Exception as exc:
        raise AgentFailure("InferenceError", "first inference failed: %s" % _first_line(exc)) from None
    first_ns = time.perf_counter_ns() - t0
    after_load_rss = current_rss()

    def progress(phase: str, done: int, total: int) -> None:
        emit(
            {
                "event": "progress",
                "phase": phase,
                "done": done,
                "total": total,
                "elapsed_s": round(time.perf_counter() - started, 3),
            }
        )

    next_report = time.perf_counter() + PROGRESS_INTERVAL_S
    warmup_started = time.perf_counter()
    for index in range(warmup):
        run()
        if time.perf_counter() >= next_report:
            progress("warmup", index + 1, warmup)
            next_report = time.perf_counter() + PROGRESS_INTERVAL_S
    per_inference_s = (time.perf_counter() - warmup_started) / warmup if warmup else first_ns / 1e9

    thermal_wait = None
    max_start_temp_c = params.get("max_start_temp_c")
    if max_start_temp_c is not None:

        def cooldown(event: Dict[str, Any]) -> None:
            emit(dict(event, event="progress", elapsed_s=round(time.perf_counter() - started, 3)))

        thermal_wait = wait_until_cool(
            host,
            str(params.get("thermal_zone") or ""),
            float(max_start_temp_c),
            float(params.get("thermal_wait_timeout_s", 300.0)),
            float(params.get("thermal_poll_s", THERMAL_POLL_S)),
            cooldown,
        )

    sensor_specs = [str(spec) for spec in params.get("power_sensors") or []]
    reader, sensor_failures = open_first_power_sensor(host, sensor_specs, params.get("sensor_options") or {})
    sampler = PowerSampler(reader) if reader is not None else None
    idle_samples: List[Sample] = []
    if sampler is not None:
        # Idle baseline: as long as the timed window is planned to be, right before it, no inference.
        idle_s = min(max(min_seconds, runs * per_inference_s), max_seconds, IDLE_MAX_SECONDS)
        progress("idle", 0, 1)
        sampler.start()
        time.sleep(idle_s)
        idle_samples = list(sampler.stop())

    sensors_start = sensors_snapshot(host)
    progress("timed", 0, runs)
    if sampler is not None:
        sampler.start()
    latencies: List[int] = []
    append = latencies.append
    clock = time.perf_counter_ns
    window_start_unix = time.time()
    window_start = clock()
    min_ns = int(min_seconds * 1e9)
    max_ns = int(max_seconds * 1e9)
    report_every_ns = int(PROGRESS_INTERVAL_S * 1e9)
    next_report_ns = window_start + report_every_ns
    while True:
        t0 = clock()
        run()
        t1 = clock()
        append(t1 - t0)
        elapsed = t1 - window_start
        if (len(latencies) >= runs and elapsed >= min_ns) or elapsed >= max_ns:
            break
        if t1 >= next_report_ns:
            progress("timed", len(latencies), runs)
            next_report_ns = t1 + report_every_ns
    window_ns = clock() - window_start
    busy_samples = sampler.stop() if sampler is not None else []
    sensors_end = sensors_snapshot(host)
    progress("timed", len(latencies), runs)
    energy = measured_energy(
        reader,
        sampler,
        sensor_specs,
        sensor_failures,
        idle_samples,
        busy_samples,
        window_ns / 1e9,
        len(latencies),
    )

    peak, source = peak_rss()
    return {
        "runtime": {
            "name": model.name,
            "version": model.version,
            "threads": model.threads,
            "providers": model.providers,
        },
        "latencies_ns": latencies,
        "warmup_runs": warmup,
        "cold_start_ms": {"load": load_ns / 1e6, "first_inference": first_ns / 1e6},
        "memory": {
            "baseline_rss_bytes": baseline_rss,
            "after_load_rss_bytes": after_load_rss,
            "peak_rss_bytes": peak,
            "source": source,
        },
        "sensors_start": sensors_start,
        "sensors_end": sensors_end,
        "energy": energy,
        "thermal_wait": thermal_wait,
        "window": {
            "started_unix": window_start_unix,
            "duration_s": window_ns / 1e9,
            "capped_by_max_seconds": window_ns >= max_ns,
        },
        "outputs": model.outputs(first_outputs),
    }


def bench_child_main(host: Host) -> int:
    emit = Emitter(sys.stdout)
    try:
        params = json.loads(sys.stdin.readline())
        result = run_bench(params, host, emit)
        emit({"ok": True, "result": result})
    except AgentFailure as failure:
        emit({"ok": False, "error": failure.to_reply()})
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit({"ok": False, "error": {"type": "Internal", "message": _first_line(exc), "data": {}}})
    return 0


# ---------------------------------------------------------------------------------------------
# The device lock: one benchmark at a time per board
# ---------------------------------------------------------------------------------------------


class DeviceLock:
    """An exclusive flock on <workdir>/bench.lock (or --lock-file), held for the whole bench.

    The kernel drops a flock when its holder dies, so a lock left by a killed process is
    recovered by the next caller without any cleanup; the file only says who holds it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: Optional[IO[str]] = None

    def acquire(
        self, timeout_s: float, holder: Dict[str, Any], on_wait: Callable[[str], None] = lambda held_by: None
    ) -> None:
        try:
            import fcntl
        except ImportError:  # not a POSIX board: no locking
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open: it is the lock
        deadline = time.monotonic() + timeout_s
        next_notice = time.monotonic()
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                handle.seek(0)
                held_by = handle.read().strip() or "unknown"
                if time.monotonic() >= next_notice:
                    on_wait(held_by)
                    next_notice = time.monotonic() + 2.0
                if time.monotonic() >= deadline:
                    handle.close()
                    raise AgentFailure(
                        "DeviceBusy",
                        "device busy (held by %s); waited %.0f s" % (held_by, timeout_s),
                        holder=held_by,
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder, sort_keys=True))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing drops the flock
            self.handle = None


# ---------------------------------------------------------------------------------------------
# The long-lived agent
# ---------------------------------------------------------------------------------------------


def signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return "signal %d" % -returncode
    return "exit %d" % returncode


class Agent:
    def __init__(
        self, host: Host, argv_tail: List[str], out: IO[str], workdir: str, lock_file: Optional[str] = None
    ) -> None:
        self.host = host
        self.argv_tail = argv_tail
        self.emit = Emitter(out)
        self.workdir = workdir
        self.lock_file = lock_file or os.path.join(workdir, "bench.lock")

    def reply_ok(self, request_id: Any, result: Any) -> None:
        self.emit({"id": request_id, "ok": True, "result": result})

    def reply_error(self, request_id: Any, failure: AgentFailure) -> None:
        self.emit({"id": request_id, "ok": False, "error": failure.to_reply()})

    def handle_line(self, raw: bytes) -> bool:
        """Handle one request line; False when the agent should stop."""
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.reply_error(None, AgentFailure("BadRequest", "not a JSON line: %s" % exc))
            return True
        if not isinstance(message, dict):
            self.reply_error(None, AgentFailure("BadRequest", "a request must be a JSON object"))
            return True
        request_id = message.get("id")
        op = message.get("op")
        params = message.get("params", {})
        if request_id is None or not isinstance(op, str):
            self.reply_error(request_id, AgentFailure("BadRequest", "a request needs an id and an op"))
            return True
        if not isinstance(params, dict):
            self.reply_error(request_id, AgentFailure("BadRequest", "params must be an object"))
            return True
        handler = {"hello": self.op_hello, "sensors": self.op_sensors, "bench": self.op_bench}.get(op)
        if op == "bye":
            self.reply_ok(request_id, {"bye": True})
            return False
        if handler is None:
            self.reply_error(
                request_id,
                AgentFailure("UnknownOp", "unknown op %r (hello, sensors, bench, bye)" % op, op=op),
            )
            return True
        try:
            self.reply_ok(request_id, handler(request_id, params))
        except AgentFailure as failure:
            self.reply_error(request_id, failure)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.reply_error(
                request_id, AgentFailure("Internal", "%s: %s" % (exc.__class__.__name__, _first_line(exc)))
            )
        return True

    def op_hello(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "agent_version": AGENT_VERSION,
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "facts": device_facts(self.host, self.workdir),
        }

    def op_sensors(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        snapshot = sensors_snapshot(self.host)
        specs = params.get("power_sensors")
        if isinstance(specs, list):  # the profile's sensors, each tried once (devices doctor)
            options = params.get("sensor_options") or {}
            snapshot["power_sensors"] = check_power_sensors(self.host, [str(s) for s in specs], options)
        if params.get("discover_power"):
            snapshot["power_discovered"] = discover_power_sensors(self.host)
        return snapshot

    def op_bench(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        lock = DeviceLock(self.lock_file)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "artifact": os.path.basename(str(params.get("artifact", ""))),
        }

        def waiting(held_by: str) -> None:
            self.emit(
                {
                    "id": request_id,
                    "event": "progress",
                    "phase": "lock",
                    "message": "waiting for the device lock held by %s" % held_by,
                }
            )

        lock.acquire(float(params.get("lock_timeout_s", 600.0)), holder, waiting)
        try:
            return self.run_bench_child(request_id, params)
        finally:
            lock.release()

    def run_bench_child(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        argv = [sys.executable, os.path.abspath(__file__), "--bench-child", *self.argv_tail]
        child = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stderr_tail: List[str] = []

        def drain_stderr(stream: IO[bytes]) -> None:
            for line in stream:
                text = line.decode("utf-8", "replace").rstrip("\n")
                sys.stderr.write(text + "\n")
                stderr_tail.append(text)
                del stderr_tail[:-STDERR_TAIL_LINES]

        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        threading.Thread(target=drain_stderr, args=(child.stderr,), daemon=True).start()
        try:
            child.stdin.write((json.dumps(params) + "\n").encode("utf-8"))
            child.stdin.close()
        except OSError:
            pass
        final: Optional[Dict[str, Any]] = None
        for line in child.stdout:
            try:
                message = json.loads(line.decode("utf-8"))
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("event") == "progress":
                self.emit(dict(message, id=request_id))
            elif "ok" in message:
                final = message
        returncode = child.wait()
        if final is None:
            tail = " | ".join(stderr_tail[-5:])
            raise AgentFailure(
                "ChildCrashed",
                "the benchmark process died (%s)%s" % (signal_name(returncode), ": " + tail if tail else ""),
                returncode=returncode,
                signal=signal_name(returncode) if returncode < 0 else None,
            )
        if final.get("ok"):
            return final["result"]
        error = final.get("error") or {}
        raise AgentFailure(
            str(error.get("type", "Internal")), str(error.get("message", "")), **(error.get("data") or {})
        )

    def serve(self, stream: IO[bytes]) -> int:
        while True:
            raw = stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return 0
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while True:  # drain the rest of the oversized line
                    rest = stream.readline(MAX_LINE_BYTES)
                    if not rest or rest.endswith(b"\n"):
                        break
                self.reply_error(
                    None, AgentFailure("LineTooLong", "request line longer than %d bytes" % MAX_LINE_BYTES)
                )
                continue
            if not raw.strip():
                continue
            if not self.handle_line(raw):
                return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="edgekit device agent (JSON lines on stdin/stdout)")
    parser.add_argument("--sysfs-root", default="/sys")
    parser.add_argument("--procfs-root", default="/proc")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--lock-file", default=None, help="the device lock (default: WORKDIR/bench.lock)")
    parser.add_argument("--bench-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version="edgekit-agent %s" % AGENT_VERSION)
    args = parser.parse_args(argv)
    host = Host(args.sysfs_root, args.procfs_root)
    if args.bench_child:
        return bench_child_main(host)
    tail = ["--sysfs-root", args.sysfs_root, "--procfs-root", args.procfs_root]
    # Protocol lines only on stdout: anything else that prints goes to stderr.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr
    stdin = os.fdopen(sys.stdin.fileno(), "rb")
    workdir = os.path.expanduser(args.workdir or "~/.edgekit")
    return Agent(host, tail, protocol_out, workdir, args.lock_file).serve(stdin)


if __name__ == "__main__":
    sys.exit(main())
