"""INA3221 / INA2xx current-and-power monitors: hwmon (JetPack 5/6, ina2xx) and JetPack 4's IIO
ina3221x driver. Devices are matched by name and I2C client, never by hwmon index."""

from __future__ import annotations

import os
from typing import List, Tuple

from edgekit_agent.failure import SENSOR_UNAVAILABLE, AgentFailure
from edgekit_agent.host import Host, parse_int
from edgekit_agent.sensors.readers import DEFAULT_INTERVAL_S, MIN_INTERVAL_S, FilePowerReader, PowerReader

INA2XX_CHIPS = ("ina219", "ina220", "ina226", "ina230", "ina231")  # ina2xx driver names [INA2XX]
INA3221X_BASE = "bus/i2c/drivers/ina3221x"


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


def ina3221x_devices(host: Host) -> List[Tuple[str, str]]:
    """(relative IIO device dir, I2C client) of every JetPack 4 ina3221x device."""
    found = []
    for client in host.list_sys(INA3221X_BASE, r"\d+-[0-9a-fA-F]+"):
        for device in host.list_sys("%s/%s" % (INA3221X_BASE, client), r"iio:device\d+|iio_device"):
            found.append(("%s/%s/%s" % (INA3221X_BASE, client, device), client))
    return found


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
    for relative, _client in ina3221x_devices(host):
        directory = host.sys_path(relative)
        for channel in (0, 1, 2):
            if (host.read_text(os.path.join(directory, "rail_name_%d" % channel)) or "").strip() == rail:
                path = os.path.join(directory, "in_power%d_input" % channel)
                return FilePowerReader(spec, [path], 1e-3, DEFAULT_INTERVAL_S, 0.001)
    raise AgentFailure(
        SENSOR_UNAVAILABLE, "no ina3221x rail %s under %s" % (rail, host.sys_path(INA3221X_BASE))
    )


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


def ina_specs(host: Host) -> List[str]:
    """Every INA rail this board offers, as sensor specs (for discovery)."""
    specs: List[str] = []
    for directory, _client in hwmon_devices(host, "ina3221"):
        for channel in (1, 2, 3):
            label = (host.read_text(os.path.join(directory, "in%d_label" % channel)) or "").strip()
            if label and "NC" not in label.split():
                specs.append("ina3221:" + label)
    for chip in INA2XX_CHIPS:
        specs.extend("%s:%s" % (chip, client) for _, client in hwmon_devices(host, chip))
    for relative, _client in ina3221x_devices(host):
        for channel in (0, 1, 2):
            rail = (host.sys_text("%s/rail_name_%d" % (relative, channel)) or "").strip()
            if rail:
                specs.append("ina3221x:" + rail)
    return specs
