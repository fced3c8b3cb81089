"""Power readers: a sensor read as watts now ("power") or as cumulative joules ("energy")."""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, Dict, List, Optional

from edgekit_agent.command import run_sensor_command
from edgekit_agent.failure import SENSOR_GARBAGE, SENSOR_UNAVAILABLE, AgentFailure
from edgekit_agent.host import parse_int

DEFAULT_INTERVAL_S = 0.02
MIN_INTERVAL_S = 0.005


def parse_sysfs_number(text: Optional[str], what: str) -> float:
    """One numeric sysfs attribute; garbage raises SensorGarbage (never a made-up 0)."""
    value = parse_int(text)
    if value is None:
        raise AgentFailure(SENSOR_GARBAGE, "%s: not an integer: %r" % (what, (text or "")[:40]), path=what)
    return float(value)


def counter_delta(previous: float, current: float, max_range: Optional[float]) -> float:
    """Difference of two readings of a cumulative counter. With a range (RAPL
    max_energy_range_uj) a smaller reading wrapped: d = e2 + (range - e1) [PCAP]; without one
    (hwmon energy*_input, a meter's joules) it was reset, and the new reading counts from 0."""
    if current >= previous:
        return current - previous
    if max_range:
        return current + (max_range - previous)
    return current


def errno_name(number: Optional[int]) -> Optional[str]:
    return errno.errorcode.get(number) if number else None


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
