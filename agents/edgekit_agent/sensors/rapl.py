"""Intel/AMD RAPL energy counters through powercap: /sys/class/powercap/intel-rapl:*/energy_uj."""

from __future__ import annotations

import os
from typing import List

from edgekit_agent.failure import SENSOR_UNAVAILABLE, AgentFailure
from edgekit_agent.host import Host, parse_int
from edgekit_agent.sensors.readers import CounterReader, PowerReader, parse_sysfs_number, read_sensor_text

RAPL_INTERVAL_S = 0.05  # counters: exact differences; periodic reads only catch wraps (range/Pmax ~ minutes)
POWERCAP_BASE = "class/powercap"
RAPL_ZONE = r"intel-rapl(:[0-9a-f]+)+"


def open_rapl(host: Host, spec: str, zone_name: str) -> PowerReader:
    """powercap RAPL energy counter, matched by zone `name` (ids are hex and the order varies);
    intel-rapl-mmio mirrors the MSR package and would count twice [PCAP][RAPL-C]."""
    for zone in host.list_sys(POWERCAP_BASE, RAPL_ZONE):
        directory = host.sys_path("%s/%s" % (POWERCAP_BASE, zone))
        if (host.read_text(os.path.join(directory, "name")) or "").strip() != zone_name:
            continue
        return open_rapl_zone(spec, os.path.join(directory, "energy_uj"), directory)
    raise AgentFailure(
        SENSOR_UNAVAILABLE, "no powercap zone named %s under %s" % (zone_name, host.sys_path(POWERCAP_BASE))
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


def rapl_specs(host: Host) -> List[str]:
    """Every named powercap RAPL zone, as sensor specs (for discovery)."""
    specs = []
    for zone in host.list_sys(POWERCAP_BASE, RAPL_ZONE):
        name = (host.sys_text("%s/%s/name" % (POWERCAP_BASE, zone)) or "").strip()
        if name:
            specs.append("rapl:" + name)
    return specs
