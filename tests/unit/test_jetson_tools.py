"""Parsers of Jetson tools' output on recorded outputs (docs/reference/jetson-tools.md), and
Coral's Edge TPU library names."""

from __future__ import annotations

import pytest
from edgekit_agent.facts.jetson import parse_jetson_clocks, parse_nvpmodel, parse_tegrastats
from edgekit_agent.runtimes.tflite import edgetpu_library

# nvpmodel -q: Orin Nano JetPack 6.2.1 (L4T 36.4.3); Orin NX L4T R36.4.4; -q --verbose lines.
NVPM_JP6 = "NV Power Mode: 25W\n1\n"
NVPM_SUPER = "NV Power Mode: MAXN_SUPER\n2\n"
NVPM_VERBOSE = (
    "NVPM VERB: Config file: /etc/nvpmodel.conf\n"
    "NVPM VERB: Current mode: NV Power Mode: 25W\n"
    "1\n"
    "NVPM VERB: PARAM CPU_ONLINE: ARG CORE_0: PATH /sys/devices/system/cpu/cpu0/online: "
    "REAL_VAL: 1 CONF_VAL: 1\n"
)

# jetson_clocks --show: Orin Nano Super, JetPack 6 (cpu1-5 lines left out), clocks off.
CLOCKS_JP6 = "\n".join(  # the tool ends two lines with a space: kept
    [
        "SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
        "Online CPUs: 0-5, Offline CPUs: ",
        "cpu0:  Governor=schedutil MinFreq=729600 MaxFreq=1344000 CurrentFreq=960000 IdleStates: WFI=1 c7=1 ",
        "GPU MinFreq=306000000 MaxFreq=918000000 CurrentFreq=306000000",
        "Active GPU TPCs: 4",
        "EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=665600000",
        "FAN Dynamic Speed Control=nvfancontrol hwmon0_pwm1=60",
        "NV Power Mode: 25W",
        "",
    ]
)
# AGX Orin, JetPack 5 (Online=1 field), clocks off; AGX Orin L4T R39.2 with jetson_clocks on.
CLOCKS_JP5 = """Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=1 c7=1
"""
CLOCKS_ON = (
    "cpu0:  Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0\n"
)
# TX2 (JetPack 4), jetson_stats tests/jetson_clocks.
CLOCKS_TX2 = """SOC family:tegra186  Machine:quill
Online CPUs: 0,3-5
cpu0: Online=1 Governor=schedutil MinFreq=345600 MaxFreq=2035200 CurrentFreq=2035200 IdleStates: C1=1 c7=1
GPU MinFreq=114750000 MaxFreq=1134750000 CurrentFreq=114750000
EMC MinFreq=40800000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=0
Fan: speed=0
NV Power Mode: MAXP_CORE_ARM
"""
CLOCKS_NOT_ROOT = "Error: Run this script(/usr/bin/jetson_clocks) as a root user\n"

# tegrastats: Orin Nano JetPack 6 (two recordings), AGX Orin, Nano JetPack 4 (unitless rails).
TEGRA_JP6 = (
    "07-29-2026 18:00:27 RAM 2272/7620MB (lfb 4x4MB) SWAP 221/3810MB (cached 0MB) "
    "CPU [0%@729,0%@1036,0%@1036,0%@1036,0%@729,0%@729] GR3D_FREQ 0% cpu@54.937C soc2@55.562C "
    "soc0@56.156C gpu@55.468C tj@56.656C soc1@56.656C VDD_IN 4673mW/4673mW VDD_CPU_GPU_CV 527mW/527mW "
    "VDD_SOC 1339mW/1339mW"
)
TEGRA_JP6_ROOT = (
    "09-21-2025 15:38:17 RAM 3645/7620MB (lfb 63x4MB) SWAP 236/3810MB (cached 0MB) "
    "CPU [1%@729,1%@729,4%@729,1%@729,0%@729,0%@729] EMC_FREQ 0%@204 GR3D_FREQ 0%@[305] NVDEC off "
    "NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@44.125C soc2@43.375C soc0@42.125C gpu@44.531C "
    "tj@44.531C soc1@43.156C VDD_IN 2957mW/2957mW VDD_CPU_GPU_CV 486mW/486mW VDD_SOC 1012mW/1012mW"
)
TEGRA_AGX = (
    "RAM 13123/62841MB (lfb 63x4MB) SWAP 9/31420MB (cached 0MB) CPU [3%@729,4%@729,1%@729,4%@729,"
    "1%@729,3%@729,2%@729,1%@729,4%@729,2%@729,1%@729,1%@729] GR3D_FREQ 0% cpu@48.156C soc2@43.562C "
    "soc0@45.125C tj@48.156C soc1@44.343C VDD_GPU_SOC 3193mW/3193mW VDD_CPU_CV 399mW/399mW "
    "VIN_SYS_5V0 4306mW/4306mW"
)
TEGRA_JP4 = (
    "RAM 330/3964MB (lfb 758x4MB) SWAP 0/1982MB (cached 0MB) CPU [12%@102,7%@102,9%@102,3%@102] "
    "EMC_FREQ 0% GR3D_FREQ 0% PLL@20.5C CPU@23C PMIC@100C GPU@22.5C AO@27C thermal@22.5C "
    "POM_5V_IN 933/933 POM_5V_GPU 0/0 POM_5V_CPU 84/84"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (NVPM_JP6, {"mode": "25W", "id": 1}),
        (NVPM_SUPER, {"mode": "MAXN_SUPER", "id": 2}),
        (NVPM_VERBOSE, {"mode": "25W", "id": 1}),
        ("NV Power Mode: 15W\n", {"mode": "15W", "id": None}),
        ("", None),
    ],
)
def test_nvpmodel(text: str, expected: dict | None) -> None:
    assert parse_nvpmodel(text) == expected


def test_jetson_clocks_off_on_jetpack_6() -> None:
    clocks = parse_jetson_clocks(CLOCKS_JP6)
    assert clocks is not None and clocks["on"] is False
    assert clocks["soc_family"] == "tegra234" and clocks["machine"].endswith("Developer Kit Super")
    assert clocks["cpus"] == {"cpu0": {"min_khz": 729600, "max_khz": 1344000, "cur_khz": 960000}}
    assert clocks["gpu"] == {"min_hz": 306000000, "max_hz": 918000000, "cur_hz": 306000000}
    assert clocks["emc"]["max_hz"] == 3199000000
    assert clocks["power_mode"] == "25W"


def test_jetson_clocks_jetpack_5_on_and_legacy() -> None:
    assert parse_jetson_clocks(CLOCKS_JP5)["on"] is False
    on = parse_jetson_clocks(CLOCKS_ON)
    assert on["on"] is True and on["cpus"]["cpu0"]["cur_khz"] == 2201600
    tx2 = parse_jetson_clocks(CLOCKS_TX2)
    assert tx2["on"] is False and tx2["power_mode"] == "MAXP_CORE_ARM" and tx2["soc_family"] == "tegra186"
    assert tx2["emc"] == {"min_hz": 40800000, "max_hz": 1600000000, "cur_hz": 1600000000}


def test_jetson_clocks_gpu_unlocked_means_off() -> None:
    gpu_free = CLOCKS_ON + "GPU MinFreq=306000000 MaxFreq=918000000 CurrentFreq=918000000\n"
    assert parse_jetson_clocks(gpu_free)["on"] is False


def test_jetson_clocks_without_root() -> None:
    assert parse_jetson_clocks(CLOCKS_NOT_ROOT) == {"on": None, "reason": CLOCKS_NOT_ROOT.strip()}
    assert parse_jetson_clocks("") is None
    assert parse_jetson_clocks("Online CPUs: 0-5\n")["on"] is None


def test_tegrastats_jetpack_6() -> None:
    stats = parse_tegrastats(TEGRA_JP6)
    assert stats["timestamp"] == "07-29-2026 18:00:27"
    assert (stats["ram_used_mb"], stats["ram_total_mb"]) == (2272, 7620)
    assert (stats["swap_used_mb"], stats["swap_total_mb"]) == (221, 3810)
    assert [c["freq_mhz"] for c in stats["cpus"]] == [729, 1036, 1036, 1036, 729, 729]
    assert stats["gpu_load_pct"] == 0 and stats["gpu_freq_mhz"] == []
    assert stats["temps_c"]["tj"] == 56.656 and len(stats["temps_c"]) == 6
    assert stats["rails_mw"] == {
        "VDD_IN": {"instant": 4673, "average": 4673},
        "VDD_CPU_GPU_CV": {"instant": 527, "average": 527},
        "VDD_SOC": {"instant": 1339, "average": 1339},
    }
    root = parse_tegrastats(TEGRA_JP6_ROOT)
    assert root["gpu_freq_mhz"] == [305] and root["emc_load_pct"] == 0
    assert root["rails_mw"]["VDD_IN"] == {"instant": 2957, "average": 2957}


def test_tegrastats_agx_orin_and_jetpack_4() -> None:
    agx = parse_tegrastats(TEGRA_AGX)
    assert agx["timestamp"] is None and agx["ram_used_mb"] == 13123 and len(agx["cpus"]) == 12
    assert set(agx["rails_mw"]) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"}
    nano = parse_tegrastats(TEGRA_JP4)
    assert nano["rails_mw"]["POM_5V_IN"] == {"instant": 933, "average": 933}
    assert nano["cpus"][0] == {"load_pct": 12, "freq_mhz": 102}
    assert nano["temps_c"]["PMIC"] == 100.0 and nano["temps_c"]["GPU"] == 22.5


def test_tegrastats_variants() -> None:
    line = "RAM 1/2MB CPU [off,5%@1200] GR3D_FREQ 99%@[1300,1300] CV0@-256C VDD_IN 9761mW/9761mW"
    stats = parse_tegrastats(line)
    assert stats["cpus"] == [None, {"load_pct": 5, "freq_mhz": 1200}]
    assert stats["gpu_load_pct"] == 99 and stats["gpu_freq_mhz"] == [1300, 1300]
    assert stats["temps_c"] == {"CV0": None}
    assert parse_tegrastats("tegrastats: command not found") is None


@pytest.mark.parametrize(
    ("platform", "library"),
    [("linux", "libedgetpu.so.1"), ("darwin", "libedgetpu.1.dylib"), ("win32", "edgetpu.dll")],
)
def test_edgetpu_library_names(platform: str, library: str) -> None:
    assert edgetpu_library(platform) == library
