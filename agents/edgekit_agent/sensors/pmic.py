"""Raspberry Pi 5 PMIC ADC: `vcgencmd pmic_read_adc`, current and voltage per rail."""

from __future__ import annotations

import re
import shutil
from typing import Dict

from edgekit_agent.command import run_sensor_command
from edgekit_agent.failure import SENSOR_GARBAGE, SENSOR_UNAVAILABLE, AgentFailure
from edgekit_agent.sensors.readers import CommandPowerReader, PowerReader

PMIC_INTERVAL_S = 0.05  # one pmic_read_adc costs ~23 ms of firmware time [ZEUS]
# "NAME_A current(7)=6.22421000A" / "NAME_V volt(15)=0.86173300V" [ZEUS test]
PMIC_LINE = re.compile(r"^\s*(\S+?)_([AV])\s+(?:current|volt)\(\d+\)=([-+\d.eE]+)[AV]\s*$")


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
