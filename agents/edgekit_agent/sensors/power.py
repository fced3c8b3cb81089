"""A profile's power sensor spec (KIND or KIND:ARGUMENT) -> a reader, and discovery of them all."""

from __future__ import annotations

import shutil
from typing import Any, Dict, List, Optional, Tuple

from edgekit_agent.failure import SENSOR_UNAVAILABLE, AgentFailure
from edgekit_agent.host import Host
from edgekit_agent.sensors.ina import INA2XX_CHIPS, ina_specs, open_ina2xx, open_ina3221, open_ina3221x
from edgekit_agent.sensors.meter import open_command
from edgekit_agent.sensors.pmic import open_pmic
from edgekit_agent.sensors.rapl import open_rapl, rapl_specs
from edgekit_agent.sensors.readers import PowerReader

NEGATIVE = "reads negative power (%.4g W): miswired or faulty"
POWER_SENSOR_KINDS = ("ina3221", "ina3221x", "rpi5-pmic", "rapl", "command", *INA2XX_CHIPS)


def split_spec(spec: str) -> Tuple[str, str]:
    kind, _, argument = spec.partition(":")
    return kind.strip(), argument.strip()


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


def check_power_sensors(host: Host, specs: List[str], options: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Each named sensor: found and readable (with one reading), or the reason it is not."""
    checked = []
    for spec in specs:
        try:
            reader = open_power_sensor(host, spec, options)
            value = reader.read()
            if reader.kind == "power" and value < 0:
                checked.append(dict(reader.describe(), ok=False, value=value, reason=NEGATIVE % value))
                continue
            checked.append(dict(reader.describe(), ok=True, value=value))
        except AgentFailure as failure:
            checked.append({"sensor": spec, "ok": False, "reason": failure.message})
    return checked


def discover_power_sensors(host: Host) -> List[Dict[str, Any]]:
    """Every power sensor this board offers, each tried once (for `devices doctor`)."""
    specs = ina_specs(host) + rapl_specs(host)
    if shutil.which("vcgencmd"):
        specs.append("rpi5-pmic")
    return check_power_sensors(host, specs, {})


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
