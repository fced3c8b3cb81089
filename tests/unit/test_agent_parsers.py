"""The agent's pure parsers (agents/edgekit_agent/facts/, sensors/thermal.py), on the exact
formats the kernel and firmware produce.

Format sources (thermal zones: Documentation/ABI/testing/
sysfs-class-thermal; cpu lists: Documentation/admin-guide/cputopology.rst; meminfo:
fs/proc/meminfo.c; get_throttled: raspberrypi/utils vcgencmd(1); device-tree strings:
Documentation/ABI/testing/sysfs-firmware-ofw).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from edgekit_agent.facts.board_model import parse_device_tree_string
from edgekit_agent.facts.cpuinfo import parse_cpu_model
from edgekit_agent.facts.cpus import parse_cpu_list
from edgekit_agent.facts.device import device_facts
from edgekit_agent.facts.meminfo import parse_meminfo
from edgekit_agent.facts.throttle import parse_throttled
from edgekit_agent.host import Host, parse_int
from edgekit_agent.sensors.snapshot import sensors_snapshot
from edgekit_agent.sensors.thermal import parse_millidegrees, read_thermal_zones

from edgekit.lab.sysfs_tree import make_fake_sysfs, write_sysfs_value

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
flags\t\t: fpu vme
"""
PI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
MEMINFO = "MemTotal:        3884096 kB\nMemFree:         2736452 kB\nHugePages_Total:       0\n"


def test_thermal_and_int_attributes() -> None:
    assert parse_millidegrees("48312\n") == 48.312
    assert parse_millidegrees("-256000\n") == -256.0
    assert parse_millidegrees("garbage\n") is None
    assert parse_millidegrees("") is None
    assert parse_int(None) is None


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3\n", [0, 1, 2, 3]), ("0,2-3\n", [0, 2, 3]), ("0\n", [0]), ("", None), ("a-b", None)],
)
def test_cpu_lists(text: str, cpus: list[int] | None) -> None:
    assert parse_cpu_list(text) == cpus


def test_meminfo_in_bytes() -> None:
    values = parse_meminfo(MEMINFO)
    assert values["MemTotal"] == 3884096 * 1024
    assert values["HugePages_Total"] == 0
    assert parse_meminfo("nonsense") == {}


def test_cpu_model() -> None:
    assert parse_cpu_model(X86_CPUINFO) == "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"
    assert parse_cpu_model(PI4_CPUINFO) == "Cortex-A72 (BCM2835)"
    assert parse_cpu_model("CPU part\t: 0xd0b\n") == "Cortex-A76"
    assert parse_cpu_model("") is None


def test_device_tree_model_is_nul_terminated() -> None:
    assert parse_device_tree_string(b"Raspberry Pi 5 Model B Rev 1.0\x00") == "Raspberry Pi 5 Model B Rev 1.0"
    assert parse_device_tree_string(b"\x00") is None
    assert parse_device_tree_string(None) is None


def test_throttled_bits() -> None:
    decoded = parse_throttled("throttled=0x50000\n")
    assert decoded == {
        "raw": "0x50000",
        "flags": ["under_voltage_occurred", "throttled_occurred"],
        "throttled_now": False,
    }
    now = parse_throttled("0x4")
    assert now["flags"] == ["throttled"] and now["throttled_now"] is True
    assert parse_throttled("throttled=0x0")["throttled_now"] is False
    assert parse_throttled("VCHI initialization failed") is None


def test_readers_on_a_fake_tree(tmp_path: Path) -> None:
    sysfs = make_fake_sysfs(
        tmp_path / "sys",
        thermal_zones=[("cpu-thermal", 48312), ("gpu-thermal", 51000)],
        cpus=4,
        governor="schedutil",
        cur_khz=1200000,
    )
    write_sysfs_value(sysfs, "devices/platform/soc/soc:firmware/get_throttled", "50005")
    procfs = tmp_path / "proc"
    (procfs / "device-tree").mkdir(parents=True)
    (procfs / "device-tree" / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    (procfs / "meminfo").write_text(MEMINFO)
    (procfs / "cpuinfo").write_text(PI4_CPUINFO)
    host = Host(str(sysfs), str(procfs))
    snapshot = sensors_snapshot(host)
    assert [(z["type"], z["temp_c"]) for z in snapshot["thermal_zones"]] == [
        ("cpu-thermal", 48.312),
        ("gpu-thermal", 51.0),
    ]
    assert snapshot["max_temp_c"] == 51.0
    assert [c["cpu"] for c in snapshot["cpufreq"]] == [0, 1, 2, 3]
    assert snapshot["cpufreq"][2] == {
        "cpu": 2,
        "governor": "schedutil",
        "cur_khz": 1200000,
        "min_khz": 600000,
        "max_khz": 1800000,
    }
    assert snapshot["throttled"]["value"] is True  # 0x5: under-voltage + throttled now
    assert snapshot["throttled"]["source"] == "rpi-firmware-sysfs"
    facts = device_facts(host)
    assert facts["board_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts["memory_total_bytes"] == 3884096 * 1024
    assert facts["cpu_model"] == "Cortex-A72 (BCM2835)"
    assert facts["cores_online"] == [0, 1, 2, 3]
    assert facts["governor"] == "schedutil"
    assert facts["temperatures_c"] == {"thermal_zone0:cpu-thermal": 48.312, "thermal_zone1:gpu-thermal": 51.0}


def test_missing_and_unreadable_files_are_none(tmp_path: Path) -> None:
    sysfs = make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu-thermal", 40000)])
    temp = sysfs / "class/thermal/thermal_zone0/temp"
    write_sysfs_value(sysfs, "class/thermal/thermal_zone0/temp", "not-a-number")
    host = Host(str(sysfs), str(tmp_path / "no-proc"))
    assert read_thermal_zones(host) == [
        {
            "zone": "thermal_zone0",
            "type": "cpu-thermal",
            "temp_c": None,
            "cpu": True,
            "reason": "temp not an integer: 'not-a-number'",
        }
    ]
    if os.geteuid() != 0:  # root reads anything; permissions only bite other users
        temp.write_text("40000\n")
        temp.chmod(0)
        assert read_thermal_zones(host)[0]["temp_c"] is None
    empty = Host(str(tmp_path / "nothing"), str(tmp_path / "nothing"))
    facts = device_facts(empty)
    assert facts["memory_total_bytes"] is None and facts["board_model"] is None
    assert sensors_snapshot(empty)["thermal_zones"] == []
