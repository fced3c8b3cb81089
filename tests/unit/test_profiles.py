from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.core.errors import ConfigError, UnknownProfileError, UsageError
from edgekit.core.profiles import (
    BUDGET_METRICS,
    list_profiles,
    load_profile,
    load_profile_file,
    parse_budget_overrides,
)
from edgekit.core.resources import bundled_profiles_dir

VALID = """
schema = 1
name = "{name}"
description = "test board"

[facts]
arch = "aarch64"
cores = 4
memory_mb = 1024
runtime = "onnxruntime"
int8_scheme = "s8s8"
reduce_range = false
default_threads = 4

[sensors]
thermal_zone = "cpu-thermal"
throttle = "rpi-firmware"
power = []

[budgets]
latency_p90_ms = 33.0
peak_rss_mb = 300
max_start_temp_c = 60

[sources]
budgets = "a test"
"""


def write_profile(tmp_path: Path, text: str, name: str = "board") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace("{name}", name))
    return path


def test_valid_profile_parses(tmp_path: Path) -> None:
    profile = load_profile_file(write_profile(tmp_path, VALID))
    assert profile.facts.cores == 4
    assert profile.budget.metric_limits() == {"latency_p90_ms": 33.0, "peak_rss_mb": 300.0}
    assert profile.budget.max_start_temp_c == 60.0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "latency_p90_ms = 33.0",
            "latency_p90 = 33.0",
            "unknown key 'latency_p90' (did you mean 'latency_p90_ms'?)",
        ),
        (
            "latency_p90_ms = 33.0",
            'latency_p90_ms = "33ms"',
            "budgets.latency_p90_ms: expected a number >= 0 (milliseconds), got the string '33ms'; "
            "write the bare number",
        ),
        ("cores = 4", "cores = true", "facts.cores: expected an integer >= 0"),
        ("cores = 4", "cores = -1", "facts.cores: expected an integer >= 0"),
        (
            'runtime = "onnxruntime"',
            'runtime = "tensorrt"',
            "facts.runtime: expected one of 'onnxruntime', 'tflite', got 'tensorrt'",
        ),
        ("peak_rss_mb = 300", "peak_rss_mb = -5", "budgets.peak_rss_mb: expected a number >= 0"),
        ("[sensors]", "[sensor]", "unknown key 'sensor' (did you mean 'sensors'?)"),
        (
            "power = []",
            "power = [1]",
            "sensors.power: expected a list of sensor names, got a list holding int 1",
        ),
        ('arch = "aarch64"\n', "", "missing required key 'facts.arch'"),
    ],
)
def test_profile_errors_name_file_key_and_expectation(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in VALID
    path = write_profile(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_profile_file(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_name_must_match_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(VALID.replace("{name}", "board"))
    with pytest.raises(ConfigError, match="expected 'other' \\(the file name\\)"):
        load_profile_file(path)


def test_invalid_toml_names_line(tmp_path: Path) -> None:
    path = write_profile(tmp_path, VALID + "\n[budgets\n")
    with pytest.raises(ConfigError, match=r"invalid TOML.*line"):
        load_profile_file(path)


def test_user_profiles_shadow_bundled(tmp_path: Path, _isolated_home: Path) -> None:
    user_dir = _isolated_home / "profiles"
    user_dir.mkdir()
    write_profile(user_dir, VALID.replace("33.0", "7.5"), name="raspberry-pi-4")
    assert load_profile("raspberry-pi-4").budget.limits["latency_p90_ms"] == 7.5


def test_unknown_profile_suggests() -> None:
    with pytest.raises(UnknownProfileError, match="did you mean 'raspberry-pi-4'"):
        load_profile("raspbery-pi-4")


REQUIRED_PROFILES = {
    "local",
    "raspberry-pi-3bplus",
    "raspberry-pi-4",
    "raspberry-pi-5",
    "raspberry-pi-zero-2w",
    "jetson-nano",
    "jetson-orin-nano",
    "generic-aarch64",
}


def test_bundled_profiles_all_valid_and_sourced() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # list_profiles leaves a broken file out with a warning
        profiles = {p.name: p for p in list_profiles()}
    assert set(profiles) >= REQUIRED_PROFILES
    for name in REQUIRED_PROFILES:
        profile = profiles[name]
        assert profile.path.parent == bundled_profiles_dir()
        assert profile.sources, f"{name} says nowhere where its numbers come from"
        assert set(profile.budget.metric_limits()) <= set(BUDGET_METRICS)
        assert profile.budget.metric_limits(), f"{name} has no budgets"


def test_budget_overrides() -> None:
    assert parse_budget_overrides(["latency_p90_ms=20", "peak_rss_mb = 64"]) == {
        "latency_p90_ms": 20.0,
        "peak_rss_mb": 64.0,
    }
    with pytest.raises(UsageError, match="did you mean 'latency_p90_ms'"):
        parse_budget_overrides(["latency_p90=20"])
    with pytest.raises(UsageError, match="'20ms' is not a number"):
        parse_budget_overrides(["latency_p90_ms=20ms"])
    with pytest.raises(UsageError, match="expected METRIC=VALUE"):
        parse_budget_overrides(["latency_p90_ms"])
    with pytest.raises(UsageError, match="finite number >= 0"):
        parse_budget_overrides(["latency_p90_ms=nan"])


def test_a_none_override_drops_the_budget() -> None:
    overrides = parse_budget_overrides(["energy_mj_per_inference=none", "latency_p50_ms=9"])
    assert overrides == {"energy_mj_per_inference": None, "latency_p50_ms": 9.0}
    budget = load_profile("raspberry-pi-4").budget.with_overrides(overrides)
    assert "energy_mj_per_inference" not in budget.metric_limits()
    assert budget.metric_limits()["latency_p50_ms"] == 9.0 and budget.max_start_temp_c == 60.0


def test_power_sensor_specs_and_the_external_meter(tmp_path: Path) -> None:
    meter = VALID.replace(
        "power = []",
        'power = ["ina226:1-0040", "command"]\npower_command = ["usb-meter", "--watts"]\n'
        'power_command_unit = "W"\nsample_interval_ms = 50',
    )
    sensors = load_profile_file(write_profile(tmp_path, meter)).sensors
    assert sensors.power == ("ina226:1-0040", "command")
    assert sensors.sensor_options() == {
        "power_command": ["usb-meter", "--watts"],
        "power_command_unit": "W",
        "sample_interval_ms": 50,
    }


@pytest.mark.parametrize(
    ("sensors", "message"),
    [
        ('power = ["ina3222:VDD_IN"]', "unknown sensor kind 'ina3222' (did you mean 'ina3221'?)"),
        ('power = ["rapl"]', "expected rapl:ZONE_NAME"),
        ('power = ["command"]', "the `command` sensor needs [sensors] power_command"),
        ('power = []\npower_command_unit = "kWh"', "power_command_unit: expected one of 'W', 'J'"),
        ("power = []\npower_command = []", "sensors.power_command"),
        ("power = []\nsample_interval_ms = 0", "sensors.sample_interval_ms"),
    ],
)
def test_bad_power_settings_name_the_key(tmp_path: Path, sensors: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile_file(write_profile(tmp_path, VALID.replace("power = []", sensors)))
    assert message in str(caught.value)
