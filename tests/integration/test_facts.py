"""measure.facts: the `devices facts` and `devices doctor` sessions as library calls, against the real
local agent reading a fake sysfs tree whose values the test chose."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.lab.sysfs_tree import make_fake_sysfs
from edgekit.measure.facts import device_facts, doctor
from edgekit.testing.sensors import make_fake_ina2xx
from edgekit.transport.board import Board
from edgekit.transport.devices import Device
from tests.fake_board import fake_device, fake_profile

pytestmark = pytest.mark.integration


@pytest.fixture
def device(tmp_path: Path) -> Device:
    sysfs = make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu-thermal", 45500)], cpus=2)
    make_fake_ina2xx(sysfs, chip="ina226", power_uw=3_000_000)
    return fake_device(sysfs)


def test_device_facts_are_the_agents_facts_and_sensor_readings(device: Device) -> None:
    facts = device_facts(device)
    assert facts["device"] == "fake-board" and facts["agent_version"]
    assert facts["governor"] == "ondemand"  # from the fake tree, not this machine
    zones = facts["sensors"]["thermal_zones"]
    assert [(z["type"], z["temp_c"]) for z in zones] == [("cpu-thermal", 45.5)]


def test_doctor_reads_the_profiles_power_sensors(device: Device, tmp_path: Path) -> None:
    report = doctor(Board.of(device, fake_profile(tmp_path, ["ina226", "ina3221:VDD_IN"])))
    checks = {c.item: c for c in report.checks}
    assert report.device == "fake-board"
    assert checks["power ina226"].status == "ok" and checks["power ina226"].detail.startswith("3.000 W")
    assert checks["power ina3221:VDD_IN"].status == "warn"
    assert checks["onnxruntime"].status == "ok" and report.install is None
    python = {"item": "python", "status": "ok", "detail": checks["python"].detail}
    assert report.to_dict()["checks"][0] == python
