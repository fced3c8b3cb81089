"""Energy and thermal end to end: the host library, the real agent and its bench child, fake sensor
trees in the kernel's formats (edgekit.testing.models) whose values a test switches in step with the run,
so the reported numbers can be checked against a known ground truth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edgekit.cli.output import _thermal_line, result_table
from edgekit.core.profiles import DeviceProfile
from edgekit.core.result import Result
from edgekit.judge.compare import compare
from edgekit.lab.sysfs_tree import make_fake_sysfs, write_sysfs_value
from edgekit.measure.bench import BenchOptions, run_bench
from edgekit.testing.sensors import make_fake_ina2xx, make_fake_ina3221, make_fake_ina3221x, make_fake_rapl
from edgekit.transport.board import Board, resolve_board
from tests.fake_board import fake_board, fake_profile

pytestmark = pytest.mark.integration

TOLERANCE = 0.10  # energy per inference within 10% of the ground truth
IDLE_W, BUSY_W = 2.0, 6.5
OPTIONS = BenchOptions(runs=50, warmup=5, min_seconds=2.0)  # energy: the first of 2 processes, 1 s


def bench_json(*args: Any) -> dict[str, Any]:
    """run_bench's result as the JSON object `edgekit bench --json` prints."""
    return run_bench(*args).to_dict()


def profile(tmp_path: Path, power: list[str], **sensors: Any) -> DeviceProfile:
    budgets = sensors.pop("budgets", {})
    return fake_profile(tmp_path, power, {"energy_mj_per_inference": 1000.0, **budgets}, **sensors)


def board(sysfs: Path, chosen: DeviceProfile) -> Board:
    """The fake board (this machine's agent reading `sysfs`) judged by `chosen`."""
    return fake_board(sysfs, chosen)


def on_phase(phase: str, action: Callable[[], None]) -> Callable[[dict[str, Any]], None]:
    """A progress callback that runs `action` once, at the first event of `phase`."""
    done: list[bool] = []

    def callback(event: dict[str, Any]) -> None:
        if event.get("phase") == phase and not done:
            done.append(True)
            action()

    return callback


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu-thermal", 45000)], cpus=2)


def first_process_window(result: dict[str, Any]) -> tuple[float, int]:
    """(timed seconds, inferences) of the first bench process: the one energy is measured in."""
    rounds = [r for r in result["latency_ms"]["rounds"] if r["process"] == 0]
    return sum(r["duration_s"] for r in rounds), sum(r["n"] for r in rounds)


def expected_mj(result: dict[str, Any], busy_w: float, idle_w: float) -> float:
    window_s, inferences = first_process_window(result)
    return (busy_w - idle_w) * window_s / inferences * 1000


def test_hwmon_energy_per_inference_matches_the_ground_truth(
    sysfs: Path, tmp_path: Path, mlp_model: Path
) -> None:
    hwmon = make_fake_ina2xx(sysfs, chip="ina226", power_uw=int(IDLE_W * 1e6), update_interval_ms=2)
    chosen = profile(tmp_path, ["ina3221:VDD_IN", "ina226"], sample_interval_ms=10)
    switch = on_phase("timed", lambda: write_sysfs_value(hwmon, "power1_input", int(BUSY_W * 1e6)))
    result = bench_json(mlp_model, board(sysfs, chosen), OPTIONS, switch)
    energy = result["energy"]
    assert energy is not None, result["null_reasons"]
    assert energy["sensor"] == "ina226" and "no ina3221 hwmon" in energy["skipped"][0]
    truth = expected_mj(result, BUSY_W, IDLE_W)
    assert energy["mj_per_inference"] == pytest.approx(truth, rel=TOLERANCE)
    assert energy["idle_power_w"] == pytest.approx(IDLE_W, rel=0.01)
    assert energy["avg_power_w"] == pytest.approx(BUSY_W, rel=TOLERANCE)
    window_s, inferences = first_process_window(result)
    assert energy["inferences"] == inferences
    assert energy["total_energy_j"] == pytest.approx(energy["avg_power_w"] * window_s, rel=0.01)
    assert energy["sample_count"] >= 50 and energy["idle_sample_count"] >= 50  # 10 ms over >= 1 s
    assert energy["idle_window_s"] == pytest.approx(window_s, rel=0.5)
    assert 0 < energy["mj_per_inference_uncertainty"] < 0.1 * truth
    check = next(c for c in result["budget"]["checks"] if c["metric"] == "energy_mj_per_inference")
    assert check["verdict"] == "pass" and check["value"] == energy["mj_per_inference"]


@pytest.mark.parametrize(
    ("make_rail", "spec", "why"),
    [
        (  # JetPack 4: the GPU rail reads 0 mW while the model runs on the CPU
            lambda sysfs: make_fake_ina3221x(sysfs),
            "ina3221x:POM_5V_GPU",
            "the rail read exactly 0 W for the whole timed window while the board ran",
        ),
        (  # JetPack 5/6 hwmon: currN_input is signed, a reversed shunt reads negative mA
            lambda sysfs: make_fake_ina3221(sysfs, rails=[("VDD_IN", 5056, -1104)]),
            "ina3221:VDD_IN",
            "the sensor read negative power (-5.582 W) in the idle window",
        ),
    ],
)
def test_an_impossible_rail_is_unknown_energy_with_the_reason(
    sysfs: Path, tmp_path: Path, mlp_model: Path, make_rail: Callable[[Path], Path], spec: str, why: str
) -> None:
    make_rail(sysfs)
    chosen = profile(tmp_path, [spec], sample_interval_ms=10)
    result = bench_json(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0.3))
    assert result["energy"] is None and result["null_reasons"]["energy"].startswith(why)
    check = next(c for c in result["budget"]["checks"] if c["metric"] == "energy_mj_per_inference")
    assert check["verdict"] == "unknown" and check["value"] is None and check["reason"].startswith(why)


class RaplCounter:
    """A thread advancing a fake energy_uj at a known power, wrapping at max_energy_range_uj."""

    def __init__(self, zone: Path, max_range_uj: int, watts: float) -> None:
        self.zone, self.max_range_uj, self.watts = zone, max_range_uj, watts
        self.energy_uj = 0.0
        self.wraps = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stop.wait(0.001):
            now = time.perf_counter()
            self.energy_uj += self.watts * (now - last) * 1e6
            last = now
            self.wraps = int(self.energy_uj // self.max_range_uj)
            write_sysfs_value(self.zone, "energy_uj", int(self.energy_uj % self.max_range_uj))


@pytest.fixture
def rapl(sysfs: Path) -> Iterator[RaplCounter]:
    max_range = 3_000_000  # 3 J: wraps about twice a second at 6.5 W
    zone = make_fake_rapl(sysfs, zones=[("intel-rapl:0", "package-0", 0, max_range)])["intel-rapl:0"]
    counter = RaplCounter(zone, max_range, IDLE_W)
    counter.thread.start()
    yield counter
    counter.stop.set()
    counter.thread.join()


def test_rapl_counter_differences_across_wraps(
    sysfs: Path, tmp_path: Path, mlp_model: Path, rapl: RaplCounter
) -> None:
    # A counter is read at the ends of each window; a fake writer thread starved for a moment by a
    # busy CI machine leaves a stale endpoint, so the windows are long enough to make that small.
    result = bench_json(
        mlp_model, board(sysfs, profile(tmp_path, ["rapl:package-0"])), replace(OPTIONS, min_seconds=2.5),
        on_phase("timed", lambda: setattr(rapl, "watts", BUSY_W)),
    )  # fmt: skip
    energy = result["energy"]
    assert energy is not None, result["null_reasons"]
    assert rapl.wraps >= 2 and energy["method"] == "counter-difference"
    assert energy["idle_power_w"] == pytest.approx(IDLE_W, rel=0.05)
    assert energy["avg_power_w"] == pytest.approx(BUSY_W, rel=0.05)
    assert energy["mj_per_inference"] == pytest.approx(expected_mj(result, BUSY_W, IDLE_W), rel=TOLERANCE)


@pytest.mark.parametrize(
    ("power", "reason"),
    [
        ([], "profile names no power sensor"),
        (["ina3221:VDD_IN"], "no ina3221 hwmon with label VDD_IN under"),
        (["rapl:package-0", "ina226"], "no powercap zone named package-0"),
    ],
)
def test_no_sensor_is_null_with_the_reason(
    sysfs: Path, tmp_path: Path, mlp_model: Path, power: list[str], reason: str
) -> None:
    result = bench_json(
        mlp_model, board(sysfs, profile(tmp_path, power)), BenchOptions(runs=20, min_seconds=0)
    )
    assert result["energy"] is None and reason in result["null_reasons"]["energy"]
    check = next(c for c in result["budget"]["checks"] if c["metric"] == "energy_mj_per_inference")
    assert check["verdict"] == "unknown" and reason in check["reason"]


def test_a_sensor_turning_to_garbage_mid_run_is_a_reason_not_a_crash(
    sysfs: Path, tmp_path: Path, mlp_model: Path
) -> None:
    hwmon = make_fake_ina2xx(sysfs)
    garbage = on_phase("timed", lambda: write_sysfs_value(hwmon, "power1_input", "-EIO garbage"))
    result = bench_json(mlp_model, board(sysfs, profile(tmp_path, ["ina226"])), OPTIONS, garbage)
    assert result["energy"] is None
    assert "ina226 failed during the run" in result["null_reasons"]["energy"]
    assert result["latency_ms"]["n"] >= 50


def test_thermal_wait_until_cool_with_progress(sysfs: Path, tmp_path: Path, mlp_model: Path) -> None:
    write_sysfs_value(sysfs, "class/thermal/thermal_zone0/temp", 80000)
    events: list[dict[str, Any]] = []
    cool = on_phase("cooldown", lambda: write_sysfs_value(sysfs, "class/thermal/thermal_zone0/temp", 50000))

    def record(event: dict[str, Any]) -> None:
        events.append(event)
        cool(event)

    chosen = profile(tmp_path, [], budgets={"max_start_temp_c": 60.0})
    result = bench_json(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0), record)
    cooldown = [e for e in events if e.get("phase") == "cooldown"]
    assert cooldown and cooldown[0]["temp_c"] == 80.0 and "waiting for < 60.0 C" in cooldown[0]["message"]
    wait = result["thermal"]["wait"]
    assert wait["timed_out"] is False and wait["start_temp_c"] == 50.0 and wait["waited_s"] > 0
    assert result["thermal"]["suspect"] is False


def test_too_hot_after_the_timeout_runs_but_is_suspect(sysfs: Path, tmp_path: Path, mlp_model: Path) -> None:
    write_sysfs_value(sysfs, "class/thermal/thermal_zone0/temp", 80000)
    chosen = profile(tmp_path, [], budgets={"max_start_temp_c": 60.0})
    options = BenchOptions(runs=20, min_seconds=0, thermal_wait_timeout_s=0.5)
    result = bench_json(mlp_model, board(sysfs, chosen), options)
    thermal = result["thermal"]
    assert thermal["wait"]["timed_out"] is True and thermal["suspect"] is True
    assert "started hot: thermal_zone0:cpu-thermal at 80.0 °C" in thermal["suspect_reasons"][0]


def test_a_gated_gpu_zone_is_null_and_the_cpu_zone_gates_the_start(tmp_path: Path, mlp_model: Path) -> None:
    """Jetson reads -256000 m°C in a power-gated GPU zone: it is no temperature, the CPU zone is."""
    zones = [("gpu-thermal", -256000), ("cpu-thermal", 45000)]
    sysfs = make_fake_sysfs(tmp_path / "sys", thermal_zones=zones, cpus=2)
    chosen = profile(tmp_path, [], budgets={"max_start_temp_c": 60.0}, thermal_zone="")
    result = run_bench(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0))
    thermal = result.to_dict()["thermal"]
    assert (thermal["start_c"], thermal["end_c"], thermal["suspect"]) == (45.0, 45.0, False)
    assert thermal["wait"]["met"] is True and thermal["wait"]["start_temp_c"] == 45.0
    gpu, cpu = thermal["zones"]
    assert (gpu["type"], gpu["start_c"], gpu["covers_cpu"]) == ("gpu-thermal", None, False)
    assert gpu["null_reasons"]["start_c"] == "reads -256.0 °C: a disconnected or power-gated sensor"
    assert (cpu["start_c"], cpu["covers_cpu"]) == (45.0, True)
    assert "ignored: thermal_zone0 (gpu-thermal) reads -256.0 °C" in _thermal_line(result.thermal)


def test_only_invalid_zones_is_unknown_and_the_start_gate_is_not_passed(
    tmp_path: Path, mlp_model: Path
) -> None:
    zones = [("gpu-thermal", -256000), ("cpu-thermal", 0)]
    sysfs = make_fake_sysfs(tmp_path / "sys", thermal_zones=zones, cpus=2)
    chosen = profile(tmp_path, [], budgets={"max_start_temp_c": 60.0})
    result = bench_json(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0))
    thermal = result["thermal"]
    assert thermal["start_c"] is None and thermal["wait"]["met"] is False
    assert thermal["null_reasons"]["start_c"].startswith("no valid thermal zone covers the CPU: ")
    assert thermal["suspect"] is True and thermal["suspect_reasons"][0].startswith(
        "max_start_temp_c 60.0 °C not checked: no valid thermal zone covers the CPU"
    )
    assert [z["start_c"] for z in thermal["zones"]] == [None, None]


def test_throttling_during_the_window_makes_the_run_suspect_everywhere(
    sysfs: Path, tmp_path: Path, mlp_model: Path
) -> None:
    firmware = "devices/platform/soc/soc:firmware/get_throttled"  # hex, as raspberrypi-hwmon shows it
    write_sysfs_value(sysfs, firmware, "50000")  # occurred since boot, not now: history, not this run
    chosen = profile(tmp_path, [])
    clean: Result = run_bench(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0.3))
    assert clean.thermal is not None and clean.thermal.throttled is False and clean.thermal.suspect is False
    capped = on_phase("timed", lambda: write_sysfs_value(sysfs, firmware, "70000"))  # + capped occurred
    hot = run_bench(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0.3), capped)
    assert hot.thermal is not None and hot.thermal.throttled is True and hot.thermal.suspect is True
    assert hot.thermal.suspect_reasons == [
        "firmware: ARM frequency capped occurred during the window (0x50000 -> 0x70000)"
    ]
    assert "SUSPECT RUN" in str(result_table(hot).caption)
    comparison = compare([clean], [hot])
    assert comparison.verdict == "not-comparable"
    assert any("is suspect: firmware: ARM frequency capped" in r for r in comparison.not_comparable_reasons)


def test_cpufreq_cap_is_throttling_but_a_low_current_clock_is_not(
    sysfs: Path, tmp_path: Path, mlp_model: Path
) -> None:
    chosen = profile(tmp_path, [])
    write_sysfs_value(sysfs, "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", 600000)  # ondemand idling
    calm = bench_json(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0.3))
    assert calm["thermal"]["throttled"] is False
    cap = on_phase(
        "timed", lambda: write_sysfs_value(sysfs, "devices/system/cpu/cpu1/cpufreq/scaling_max_freq", 1200000)
    )
    capped = bench_json(mlp_model, board(sysfs, chosen), BenchOptions(runs=20, min_seconds=0.3), cap)
    assert capped["thermal"]["suspect_reasons"] == [
        "cpu1 scaling_max_freq capped 1800000 -> 1200000 kHz during the window"
    ]


def test_local_reports_real_energy_or_why_not(mlp_model: Path) -> None:
    """This machine as `local`: RAPL when readable, else null naming the sensor (this CI machine
    has no /sys/class/powercap at all)."""
    result = bench_json(mlp_model, resolve_board("local"), BenchOptions(runs=50))
    if result["energy"] is not None:
        assert result["energy"]["sensor"] == "rapl:package-0" and result["energy"]["avg_power_w"] > 0
    else:
        assert "rapl:package-0" in result["null_reasons"]["energy"]
        assert Path("/sys/class/powercap").is_dir() or "no powercap zone" in result["null_reasons"]["energy"]
