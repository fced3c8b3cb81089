"""The agent's power, energy and thermal back ends (agents/edgekit_agent/sensors/, energy.py,
sampler.py, thermal_wait.py) on fake trees in the kernel's and firmware's exact formats (source
keys in edgekit.testing.sensors's builders)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgekit_agent.energy import energy_summary, window_power
from edgekit_agent.facts.jetson import parse_nvpmodel
from edgekit_agent.failure import AgentFailure
from edgekit_agent.host import Host
from edgekit_agent.sampler import PowerSampler
from edgekit_agent.sensors.meter import parse_meter_output
from edgekit_agent.sensors.pmic import parse_pmic_adc
from edgekit_agent.sensors.power import discover_power_sensors, open_power_sensor
from edgekit_agent.sensors.readers import counter_delta, parse_sysfs_number
from edgekit_agent.sensors.snapshot import sensors_snapshot
from edgekit_agent.thermal_wait import wait_until_cool

from edgekit.core.resources import agent_source_dir
from edgekit.judge.thermal import thermal_summary
from edgekit.lab.sysfs_tree import make_fake_sysfs, write_sysfs_value
from edgekit.testing.sensors import (
    NVPMODEL_QUERY,
    PI5_PMIC_ADC,
    make_fake_ina2xx,
    make_fake_ina3221,
    make_fake_ina3221x,
    make_fake_rapl,
    make_fake_tool,
    set_ina3221_rail,
)

MAX_RANGE_UJ = 262143328850  # raplcap#14


def failure_of(call) -> AgentFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(AgentFailure) as caught:
        call()
    return caught.value


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin directory first on PATH, for fake vcgencmd / nvpmodel."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


# --- pure parsers ---------------------------------------------------------------------------


def test_pmic_rails_pair_amps_and_volts_by_name_not_index() -> None:
    rails = parse_pmic_adc(PI5_PMIC_ADC)
    assert len(rails) == 12  # EXT5V_V and BATT_V have no current line, so no power
    assert rails["VDD_CORE"] == pytest.approx(6.22421 * 0.861733)
    assert rails["DDR_VDDQ"] == 0.0
    assert "EXT5V" not in rails and "BATT" not in rails


@pytest.mark.parametrize("text", ["", "VCHI initialization failed\n", " VDD_CORE_A current(7)=nanA\n"])
def test_pmic_garbage_is_a_typed_failure(text: str) -> None:
    assert failure_of(lambda: parse_pmic_adc(text)).error_type == "SensorGarbage"


def test_nvpmodel_query() -> None:
    assert parse_nvpmodel(NVPMODEL_QUERY) == {"mode": "MAXN", "id": 0}
    warned = "NVPM WARN: patching tpc_pg_mask: (0x1:0x4)\nNV Power Mode: 15W\nNVPM WARN: x\n2\n"
    assert parse_nvpmodel(warned) == {"mode": "15W", "id": 2}
    assert parse_nvpmodel("nvpmodel: command not found") is None


@pytest.mark.parametrize(
    ("text", "value"), [("4.25\n", 4.25), ("power: 3.1 W\n", 3.1), ("12\n13.5 J\n\n", 13.5), ("1e3", 1000.0)]
)
def test_meter_output(text: str, value: float) -> None:
    assert parse_meter_output(text) == value


@pytest.mark.parametrize("text", ["", "error: no device\n", "nan\n"])
def test_meter_garbage(text: str) -> None:
    assert failure_of(lambda: parse_meter_output(text)).error_type == "SensorGarbage"


def test_counter_delta_wraps_at_the_range_and_treats_a_drop_without_range_as_reset() -> None:
    assert counter_delta(100, 250, MAX_RANGE_UJ) == 150
    assert counter_delta(MAX_RANGE_UJ - 50, 30, MAX_RANGE_UJ) == 80
    assert counter_delta(5000, 30, None) == 30


def test_sysfs_number_garbage() -> None:
    assert parse_sysfs_number("5056\n", "x") == 5056.0
    for text in (None, "", "abc\n", "5.0.1"):
        assert failure_of(lambda t=text: parse_sysfs_number(t, "x")).error_type == "SensorGarbage"


# --- readers over fake trees ----------------------------------------------------------------


def test_ina3221_by_label_power_is_mv_times_ma(tmp_path: Path) -> None:
    directory = make_fake_ina3221(tmp_path, index=5)
    host = Host(str(tmp_path))
    reader = open_power_sensor(host, "ina3221:VDD_IN")
    assert reader.kind == "power"
    assert reader.read() == pytest.approx(5.056 * 1.104)
    assert reader.interval_s == pytest.approx(0.007)  # update_interval ms
    assert "1-0040" in reader.source
    set_ina3221_rail(directory, 3, 5000, 400)
    assert open_power_sensor(host, "ina3221:VDD_SOC").read() == pytest.approx(2.0)
    missing = failure_of(lambda: open_power_sensor(host, "ina3221:VDD_GPU"))
    assert missing.error_type == "SensorUnavailable"
    assert "no ina3221 hwmon with label VDD_GPU" in missing.message


def test_ina2xx_the_only_one_or_by_i2c_client(tmp_path: Path) -> None:
    make_fake_ina2xx(tmp_path, chip="ina226", index=1, client="1-0040", power_uw=2500000)
    host = Host(str(tmp_path))
    assert open_power_sensor(host, "ina226").read() == pytest.approx(2.5)
    make_fake_ina2xx(tmp_path, chip="ina226", index=2, client="1-0041", power_uw=1250000)
    ambiguous = failure_of(lambda: open_power_sensor(host, "ina226"))
    assert "2 ina226 hwmon devices (1-0040, 1-0041)" in ambiguous.message
    assert open_power_sensor(host, "ina226:1-0041").read() == pytest.approx(1.25)
    assert "no ina219 hwmon" in failure_of(lambda: open_power_sensor(host, "ina219")).message


def test_ina3221x_jetpack4_iio_rail_in_milliwatts(tmp_path: Path) -> None:
    make_fake_ina3221x(tmp_path)
    host = Host(str(tmp_path))
    assert open_power_sensor(host, "ina3221x:POM_5V_IN").read() == pytest.approx(3.149)
    assert "no ina3221x rail VDD_IN" in failure_of(lambda: open_power_sensor(host, "ina3221x:VDD_IN")).message


def test_rapl_matches_by_name_skips_mmio_and_unfolds_a_wrap(tmp_path: Path) -> None:
    zones = make_fake_rapl(tmp_path, zones=[
        ("intel-rapl-mmio:0", "package-0", 5, MAX_RANGE_UJ),
        ("intel-rapl:0", "package-0", MAX_RANGE_UJ - 2_000_000, MAX_RANGE_UJ),
        ("intel-rapl:0:a", "dram", 7, MAX_RANGE_UJ),
    ])  # fmt: skip
    host = Host(str(tmp_path))
    reader = open_power_sensor(host, "rapl:package-0")
    assert reader.kind == "energy" and "intel-rapl:0/" in reader.source + "/"
    assert "mmio" not in os.path.realpath(reader.source)
    assert reader.read() == 0.0  # joules since opening
    write_sysfs_value(zones["intel-rapl:0"], "energy_uj", MAX_RANGE_UJ - 500_000)
    assert reader.read() == pytest.approx(1.5)
    write_sysfs_value(zones["intel-rapl:0"], "energy_uj", 1_500_000)  # wrapped past the range
    assert reader.read() == pytest.approx(1.5 + 0.5 + 1.5)
    assert open_power_sensor(host, "rapl:dram").read() == 0.0
    assert "no powercap zone named psys" in failure_of(lambda: open_power_sensor(host, "rapl:psys")).message


def test_unreadable_and_garbage_files_are_reasons_not_crashes(tmp_path: Path) -> None:
    zones = make_fake_rapl(tmp_path, zones=[("intel-rapl:0", "package-0", 1, MAX_RANGE_UJ)])
    host = Host(str(tmp_path))
    # Tests run as root, which chmod cannot stop: a directory where the file should be fails
    # the open() the same way (an OSError with its errno), here EISDIR.
    (zones["intel-rapl:0"] / "energy_uj").unlink()
    (zones["intel-rapl:0"] / "energy_uj").mkdir()
    failure = failure_of(lambda: open_power_sensor(host, "rapl:package-0"))
    assert failure.error_type == "SensorUnavailable" and "EISDIR" in failure.message
    (zones["intel-rapl:0"] / "energy_uj").rmdir()
    write_sysfs_value(zones["intel-rapl:0"], "energy_uj", "garbage")
    assert failure_of(lambda: open_power_sensor(host, "rapl:package-0")).error_type == "SensorGarbage"
    directory = make_fake_ina2xx(tmp_path)
    write_sysfs_value(directory, "power1_input", "")
    assert failure_of(lambda: open_power_sensor(host, "ina226")).error_type == "SensorGarbage"
    unknown = failure_of(lambda: open_power_sensor(host, "tegrastats:VDD_IN"))
    assert "unknown sensor 'tegrastats:VDD_IN'" in unknown.message


@pytest.fixture
def world_readable_tree() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="edgekit-rapl-"))
    directory.chmod(0o755)
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=False)


def test_root_only_energy_uj_is_eacces_for_a_normal_user(world_readable_tree: Path) -> None:
    """Since Linux 5.10 energy_uj is mode 0400 (CVE-2020-8694): a real EACCES, from a child that
    drops to `nobody` when the tests run as root."""
    zones = make_fake_rapl(world_readable_tree, zones=[("intel-rapl:0", "package-0", 1, MAX_RANGE_UJ)])
    for path in world_readable_tree.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o444)
    (zones["intel-rapl:0"] / "energy_uj").chmod(0o400)
    code = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(agent_source_dir())!r})\n"
        "from edgekit_agent.failure import AgentFailure\n"
        "from edgekit_agent.host import Host\n"
        "from edgekit_agent.sensors.power import open_power_sensor\n"
        # after the imports: this Python's own files may be unreadable by nobody
        "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        f"    open_power_sensor(Host({str(world_readable_tree)!r}), 'rapl:package-0')\n"
        "except AgentFailure as f: print(f.error_type, f.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    expected = "SensorUnavailable rapl:package-0: energy_uj is root-only (EACCES; CVE-2020-8694)"
    assert done.stdout.strip() == expected, done.stderr


def test_rpi5_pmic_through_a_fake_vcgencmd(fake_path: Path, tmp_path: Path) -> None:
    make_fake_tool(fake_path, "vcgencmd", {"pmic_read_adc": PI5_PMIC_ADC})
    host = Host(str(tmp_path))
    total = open_power_sensor(host, "rpi5-pmic")
    assert total.read() == pytest.approx(sum(parse_pmic_adc(PI5_PMIC_ADC).values()))
    assert total.interval_s >= 0.05
    assert open_power_sensor(host, "rpi5-pmic:VDD_CORE").read() == pytest.approx(6.22421 * 0.861733)
    assert "no rail GPU" in failure_of(lambda: open_power_sensor(host, "rpi5-pmic:GPU")).message


def test_rpi5_pmic_on_a_board_without_it(fake_path: Path, tmp_path: Path) -> None:
    host = Host(str(tmp_path))
    failure = failure_of(lambda: open_power_sensor(host, "rpi5-pmic"))
    assert "vcgencmd not found" in failure.message
    make_fake_tool(fake_path, "vcgencmd", {"get_throttled": "throttled=0x0\n"})  # a Pi 4: no pmic_read_adc
    failure = failure_of(lambda: open_power_sensor(host, "rpi5-pmic"))
    assert "exited 255" in failure.message and "VCHI" in failure.message


def test_external_meter_command_watts_and_joules(tmp_path: Path) -> None:
    host = Host(str(tmp_path))
    watts = open_power_sensor(host, "command", {"power_command": ["echo", "4.5 W"]})
    assert watts.kind == "power" and watts.read() == 4.5 and watts.interval_s == 0.2
    counter = tmp_path / "joules"
    counter.write_text("100.0\n")
    options = {"power_command": ["cat", str(counter)], "power_command_unit": "J", "sample_interval_ms": 500}
    joules = open_power_sensor(host, "command", options)
    assert joules.kind == "energy" and joules.interval_s == 0.5
    counter.write_text("112.5\n")
    assert joules.read() == pytest.approx(12.5)
    counter.write_text("2.0\n")  # the meter restarted: counts from 0 again
    assert joules.read() == pytest.approx(14.5)
    assert "no power_command" in failure_of(lambda: open_power_sensor(host, "command")).message
    bad = failure_of(lambda: open_power_sensor(host, "command", {"power_command": ["false"]}))
    assert "exited 1" in bad.message


def test_discovery_lists_every_sensor_with_its_state(tmp_path: Path) -> None:
    make_fake_ina3221(tmp_path, rails=[("VDD_IN", 5000, 1000), ("", 5000, 0), ("VDD_SOC", 5000, -200)])
    make_fake_rapl(tmp_path)
    found = {entry["sensor"]: entry for entry in discover_power_sensors(Host(str(tmp_path)))}
    assert set(found) >= {"ina3221:VDD_IN", "ina3221:VDD_SOC", "rapl:package-0", "rapl:core", "rapl:uncore"}
    assert found["ina3221:VDD_IN"]["ok"] and found["ina3221:VDD_IN"]["value"] == pytest.approx(5.0)
    soc = found["ina3221:VDD_SOC"]  # currN_input is signed: a reversed shunt reads negative
    assert soc["ok"] is False and soc["reason"] == "reads negative power (-1 W): miswired or faulty"


def test_snapshot_reports_nvpmodel_when_present(fake_path: Path, tmp_path: Path) -> None:
    host = Host(str(make_fake_sysfs(tmp_path / "sys")))
    assert sensors_snapshot(host)["nvpmodel"] is None
    make_fake_tool(fake_path, "nvpmodel", {"q": NVPMODEL_QUERY})
    assert sensors_snapshot(host)["nvpmodel"] == {"mode": "MAXN", "id": 0}


# --- the energy summary (pure) --------------------------------------------------------------


def steady(watts: float, seconds: float, step: float, t0: float = 0.0) -> list[tuple[float, float]]:
    return [(t0 + i * step, watts) for i in range(round(seconds / step) + 1)]


def test_energy_per_inference_from_power_samples() -> None:
    summary = energy_summary(
        steady(2.0, 2.0, 0.01), steady(7.0, 2.0, 0.01, 5.0), kind="power", window_s=2.0, inferences=1000,
        resolution=0.001,
    )  # fmt: skip
    assert summary["mj_per_inference"] == pytest.approx(5.0 * 2.0 / 1000 * 1000)  # 10 mJ
    assert summary["avg_power_w"] == pytest.approx(7.0) and summary["idle_power_w"] == pytest.approx(2.0)
    assert summary["total_energy_j"] == pytest.approx(14.0)
    assert summary["sample_count"] == 201 and summary["idle_sample_count"] == 201
    # steady readings: only quantisation (1 mW / sqrt(12) per mean, two means) remains
    quantum = 0.001 / 12**0.5 * 2**0.5 * 2.0 / 1000 * 1000
    assert summary["mj_per_inference_uncertainty"] == pytest.approx(quantum)


def test_trapezoid_weights_uneven_samples_by_time() -> None:
    busy = [(0.0, 4.0), (0.1, 4.0), (0.2, 10.0), (1.0, 10.0)]  # 0.1 s ramp, then 10 W for 0.8 s
    mean, _ = window_power(busy, "power")
    assert mean == pytest.approx((0.1 * 4 + 0.1 * 7 + 0.8 * 10) / 1.0)


def test_counter_energy_uses_differences_not_samples() -> None:
    idle = [(0.0, 0.0), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0)]  # 2 W
    busy = [(10.0, 4.0), (10.7, 11.0), (11.0, 14.0), (12.0, 24.0)]  # 10 W
    summary = energy_summary(idle, busy, kind="energy", window_s=2.0, inferences=400, resolution=1e-6)
    assert summary["avg_power_w"] == pytest.approx(10.0) and summary["idle_power_w"] == pytest.approx(2.0)
    assert summary["mj_per_inference"] == pytest.approx(8.0 * 2.0 / 400 * 1000)
    assert summary["method"] == "counter-difference"


def test_too_few_samples_is_null_with_a_reason() -> None:
    summary = energy_summary(
        steady(2.0, 0.2, 0.1),
        steady(3.0, 0.1, 0.1),
        kind="power",
        window_s=0.1,
        inferences=10,
        resolution=0.0,
    )
    assert (
        summary["mj_per_inference"] is None and "too few power samples (idle 3, busy 2" in summary["reason"]
    )


@pytest.mark.parametrize(
    ("kind", "idle", "busy", "why"),
    [
        (
            "power",
            steady(2.0, 1.0, 0.1),
            steady(-0.5, 1.0, 0.1),
            "negative power (-0.5 W) in the timed window",
        ),
        (
            "power",
            steady(-0.1, 1.0, 0.1),
            steady(3.0, 1.0, 0.1),
            "negative power (-0.1 W) in the idle window",
        ),
        (
            "power",
            steady(0.0, 1.0, 0.1),
            steady(0.0, 1.0, 0.1),
            "read exactly 0 W for the whole timed window",
        ),
        (
            "power",
            steady(1.0, 1.0, 0.1),
            steady(0.0, 1.0, 0.1),
            "read exactly 0 W for the whole timed window",
        ),
        ("energy", [(0.0, 5.0), (0.1, 4.0), (0.2, 4.5)], steady(3.0, 1.0, 0.1), "negative power (-10 W)"),
        ("energy", [(i * 0.1, i * 0.2) for i in range(10)], steady(7.0, 1.0, 0.1), "did not advance"),
    ],
)
def test_impossible_rail_readings_are_null_never_zero_or_negative_millijoules(
    kind: str, idle: list[tuple[float, float]], busy: list[tuple[float, float]], why: str
) -> None:
    summary = energy_summary(idle, busy, kind=kind, window_s=1.0, inferences=100, resolution=0.001)
    assert summary["mj_per_inference"] is None and why in summary["reason"]


def test_a_rail_at_zero_while_idle_only_is_a_measurement() -> None:
    """A GPU rail idles at 0 W and draws during a GPU run: that is energy, not a dead rail."""
    summary = energy_summary(
        steady(0.0, 1.0, 0.1),
        steady(2.0, 1.0, 0.1),
        kind="power",
        window_s=1.0,
        inferences=100,
        resolution=0.0,
    )
    assert summary["mj_per_inference"] == pytest.approx(20.0)


def test_noisy_samples_give_a_standard_error() -> None:
    noisy = [(i * 0.01, 5.0 + (0.5 if i % 2 else -0.5)) for i in range(101)]
    summary = energy_summary(
        steady(2.0, 1.0, 0.01), noisy, kind="power", window_s=1.0, inferences=100, resolution=0.0
    )
    assert summary["mj_per_inference_uncertainty"] == pytest.approx(0.5 / 101**0.5 * 10, rel=0.02)


# --- thermal wait -----------------------------------------------------------------------------


def test_thermal_wait_times_out_and_says_so(tmp_path: Path) -> None:
    host = Host(str(make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu-thermal", 80000)])))
    events: list[dict[str, object]] = []
    wait = wait_until_cool(host, "cpu-thermal", 60.0, 0.3, 0.05, events.append)
    assert wait["timed_out"] is True and wait["start_temp_c"] == 80.0
    assert events and events[0]["phase"] == "cooldown" and events[0]["temp_c"] == 80.0
    cool = wait_until_cool(host, "cpu-thermal", 90.0, 0.3, 0.05, events.append)
    assert cool["timed_out"] is False and cool["waited_s"] < 0.1
    absent = wait_until_cool(host, "gpu-thermal", 90.0, 0.3, 0.05, events.append)  # the CPU zone stands in
    assert absent["start_temp_c"] == 80.0 and absent["zone"] == "thermal_zone0:cpu-thermal" and absent["met"]
    empty = Host(str(make_fake_sysfs(tmp_path / "empty", thermal_zones=[])))
    none = wait_until_cool(empty, "gpu-thermal", 60.0, 0.3, 0.05, events.append)
    assert none["start_temp_c"] is None and none["met"] is None and none["reason"] == "no thermal zones"
    assert thermal_summary({}, {}, "", none)["suspect"] is False  # cannot tell, as without a throttle source


JETSON_GATED_GPU = [("cpu-thermal", 45000), ("gpu-thermal", -256000), ("CV0-thermal", -256000)]


def test_a_gated_zone_reads_null_with_the_reason_and_never_stands_for_the_board(tmp_path: Path) -> None:
    host = Host(str(make_fake_sysfs(tmp_path / "sys", thermal_zones=JETSON_GATED_GPU)))
    snapshot = sensors_snapshot(host)
    cpu, gpu, cv = snapshot["thermal_zones"]
    assert (cpu["temp_c"], cpu["cpu"], "reason" in cpu) == (45.0, True, False)
    assert gpu["temp_c"] is None and gpu["cpu"] is False
    assert gpu["reason"] == "reads -256.0 °C: a disconnected or power-gated sensor" == cv["reason"]
    assert snapshot["max_temp_c"] == 45.0
    for watched in ("", "gpu-thermal", "cpu-thermal"):  # hottest, the gated zone named, the CPU named
        wait = wait_until_cool(host, watched, 60.0, 0.3, 0.05, lambda event: None)
        assert (wait["start_temp_c"], wait["zone"], wait["met"]) == (45.0, "thermal_zone0:cpu-thermal", True)


@pytest.mark.parametrize(
    ("zones", "why"),
    [
        ([("cpu-thermal", 0), ("gpu-thermal", -256000)], "thermal_zone0 (cpu-thermal) reads 0 °C: an"),
        ([("x86_pkg_temp", 151000)], "thermal_zone0 (x86_pkg_temp) reads 151.0 °C, above 150 °C"),
        ([("CPU-therm", -256000)], "thermal_zone0 (CPU-therm) reads -256.0 °C: a disconnected"),
        ([("gpu-thermal", 45000), ("soc_thermal", -40500)], "thermal_zone1 (soc_thermal) reads -40.5 °C"),
    ],
)
def test_only_invalid_cpu_zones_is_unknown_and_never_meets_the_start_gate(
    tmp_path: Path, zones: list[tuple[str, int]], why: str
) -> None:
    host = Host(str(make_fake_sysfs(tmp_path / "sys", thermal_zones=zones)))
    wait = wait_until_cool(host, "", 60.0, 0.3, 0.05, lambda event: None)
    assert wait["start_temp_c"] is None and wait["met"] is False and wait["timed_out"] is False
    assert wait["reason"].startswith("no valid thermal zone covers the CPU: ") and why in wait["reason"]
    snapshot = sensors_snapshot(host)
    summary = thermal_summary(snapshot, snapshot, "cpu-thermal", wait)
    assert summary["start_c"] is None and summary["null_reasons"]["start_c"] == wait["reason"]
    assert summary["suspect"] is True
    assert summary["suspect_reasons"][0] == f"max_start_temp_c 60.0 °C not checked: {wait['reason']}"
    assert [z["start_c"] for z in summary["zones"]] == [45.0 if temp == 45000 else None for _, temp in zones]


def test_sampler_brackets_the_window_and_a_failed_sensor_stays_failed(tmp_path: Path) -> None:
    directory = make_fake_ina2xx(tmp_path, power_uw=3_000_000)
    reader = open_power_sensor(Host(str(tmp_path)), "ina226", {"sample_interval_ms": 5})
    sampler = PowerSampler(reader)
    sampler.start()
    started = time.perf_counter()
    time.sleep(0.1)
    samples = sampler.stop()
    assert samples[0][0] <= started and len(samples) >= 5 and {w for _, w in samples} == {3.0}
    write_sysfs_value(directory, "power1_input", "garbage")
    sampler.start()  # the idle window fails ...
    assert sampler.stop() == [] and "not an integer" in str(sampler.error)
    write_sysfs_value(directory, "power1_input", 3_000_000)
    sampler.start()  # ... so the timed window is not measured against a missing baseline
    assert sampler.stop() == [] and sampler.error is not None
