"""An external meter (USB power meter, smart plug): the profile's power_command prints watts
(unit "W") or cumulative joules (unit "J")."""

from __future__ import annotations

import re
import shutil
from typing import Any, Dict

from edgekit_agent.command import run_sensor_command
from edgekit_agent.failure import SENSOR_GARBAGE, SENSOR_UNAVAILABLE, AgentFailure
from edgekit_agent.sensors.readers import CommandPowerReader, CounterReader, PowerReader

COMMAND_INTERVAL_S = 0.2
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


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


def open_command(spec: str, options: Dict[str, Any]) -> PowerReader:
    """The meter named by options["power_command"] (argv list), read once now so that a broken
    meter fails here, not in the middle of the window."""
    argv = options.get("power_command")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise AgentFailure(SENSOR_UNAVAILABLE, "command: the profile gives no power_command")
    unit = options.get("power_command_unit", "W")
    resolved = shutil.which(argv[0]) or argv[0]
    interval = COMMAND_INTERVAL_S
    argv = [resolved, *argv[1:]]
    parse_meter_output(run_sensor_command(argv))
    if unit == "J":

        def fetch() -> float:
            return parse_meter_output(run_sensor_command(argv))

        return CounterReader(spec, " ".join(argv), interval, 1e-3, fetch, 1.0, None)
    if unit != "W":
        raise AgentFailure(SENSOR_UNAVAILABLE, "command: power_command_unit must be W or J, got %r" % unit)
    return CommandPowerReader(spec, argv, parse_meter_output, interval, 1e-3)
