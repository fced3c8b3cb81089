"""Device profiles: what a board is and the budgets a model must meet on it."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.core.config import Field, Section, integer, number, read_toml, text, validate
from edgekit.core.errors import ConfigError, UnknownProfileError, UsageError
from edgekit.core.resources import bundled_profiles_dir, user_profiles_dir

# Budget metrics: key -> what it limits. A result is within budget when value <= limit.
BUDGET_METRICS: dict[str, str] = {
    "latency_p50_ms": "median inference latency, milliseconds",
    "latency_p90_ms": "90th percentile inference latency, milliseconds",
    "latency_p99_ms": "99th percentile inference latency, milliseconds",
    "cold_start_ms": "model load + first inference, milliseconds",
    "peak_rss_mb": "peak resident memory of the benchmark process, MiB",
    "model_size_mb": "artifact size on disk, MiB",
    "energy_mj_per_inference": "energy per inference above idle, millijoules",
}
# Run conditions, not result metrics: a run waits until the board is cool enough.
CONDITION_KEYS: dict[str, str] = {
    "max_start_temp_c": "temperature the watched zone must be below before timing, deg C",
}

_UNITS = {"ms": "milliseconds", "mb": "MiB", "mj_per_inference": "millijoules", "c": "degrees C"}


def _unit_of(key: str) -> str:
    for suffix, unit in _UNITS.items():
        if key.endswith("_" + suffix):
            return unit
    return "number"


PROFILE_SCHEMA = Section(
    fields={
        "schema": Field((int,), "1 (the profile schema version)", required=True, choices=(1,)),
        "name": text("the profile name, equal to the file name without .toml", required=True),
        "description": text("a one-line description of the board"),
        "facts": Section(
            required=True,
            fields={
                "arch": text("", required=True, choices=("aarch64", "armv7l", "x86_64", "any")),
                "cores": integer("CPU cores; 0 = the host's", required=True),
                "memory_mb": integer("RAM in MiB; 0 = the host's", required=True),
                "runtime": text("", required=True, choices=("onnxruntime", "tflite")),
                "int8_scheme": text("", required=True, choices=("u8s8", "s8s8")),
                "reduce_range": Field((bool,), "true or false", required=True),
                "default_threads": integer("threads; 0 = all cores", required=True),
            },
        ),
        "sensors": Section(
            fields={
                "thermal_zone": text("a thermal zone type, '' = hottest zone"),
                "throttle": text("", choices=("none", "rpi-firmware", "jetson")),
                "power": Field((list,), "a list of sensor names", item_types=(str,)),
                "power_command": Field(
                    (list,),
                    'a command line as a list, e.g. ["meter", "--watts"] (the `command` sensor)',
                    item_types=(str,),
                    check=lambda argv: len(argv) > 0,
                ),
                "power_command_unit": text("", choices=("W", "J")),
                "sample_interval_ms": Field(
                    (int, float),
                    "a number > 0 (milliseconds between power readings)",
                    check=lambda value: math.isfinite(value) and value > 0,
                ),
            },
        ),
        "budgets": Section(
            fields={key: number(_unit_of(key)) for key in {**BUDGET_METRICS, **CONDITION_KEYS}},
        ),
        "sources": Section(free_values=text("where the numbers come from")),
    },
)


@dataclass(frozen=True)
class ProfileFacts:
    arch: str
    cores: int
    memory_mb: int
    runtime: str
    int8_scheme: str
    reduce_range: bool
    default_threads: int


# Power sensor kinds the agent reads (agents/edgekit_agent/sensors/power.py): KIND or KIND:ARGUMENT.
POWER_SENSOR_KINDS: dict[str, str] = {
    "ina3221": "ina3221:LABEL, a hwmon ina3221 channel by its label (JetPack 5/6), e.g. ina3221:VDD_IN",
    "ina3221x": "ina3221x:RAIL, a JetPack 4 IIO rail, e.g. ina3221x:POM_5V_IN",
    "ina219": "ina219 or ina219:I2C_CLIENT (e.g. ina219:1-0040), a hwmon ina2xx power1_input",
    "ina220": "ina220 or ina220:I2C_CLIENT",
    "ina226": "ina226 or ina226:I2C_CLIENT",
    "ina230": "ina230 or ina230:I2C_CLIENT",
    "ina231": "ina231 or ina231:I2C_CLIENT",
    "rpi5-pmic": "rpi5-pmic (all rails) or rpi5-pmic:RAIL (e.g. VDD_CORE), via vcgencmd pmic_read_adc",
    "rapl": "rapl:ZONE_NAME, a powercap energy counter, e.g. rapl:package-0",
    "command": "command, the external meter in power_command",
}
_NEEDS_ARGUMENT = ("ina3221", "ina3221x", "rapl")


@dataclass(frozen=True)
class ProfileSensors:
    thermal_zone: str = ""
    throttle: str = "none"
    power: tuple[str, ...] = ()
    power_command: tuple[str, ...] = ()
    power_command_unit: str = "W"
    sample_interval_ms: float | None = None

    def sensor_options(self) -> dict[str, Any]:
        """What the agent needs besides the sensor names (bench param `sensor_options`)."""
        options: dict[str, Any] = {"power_command_unit": self.power_command_unit}
        if self.power_command:
            options["power_command"] = list(self.power_command)
        if self.sample_interval_ms is not None:
            options["sample_interval_ms"] = self.sample_interval_ms
        return options


def _check_power_specs(sensors: dict[str, Any], path: Path) -> None:
    for spec in sensors.get("power", ()):
        kind, _, argument = spec.partition(":")
        problem = None
        if kind not in POWER_SENSOR_KINDS:
            close = difflib.get_close_matches(kind, list(POWER_SENSOR_KINDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problem = f"unknown sensor kind {kind!r}{hint}; known: {', '.join(POWER_SENSOR_KINDS)}"
        elif kind in _NEEDS_ARGUMENT and not argument:
            problem = f"expected {POWER_SENSOR_KINDS[kind]}"
        elif kind == "command" and not sensors.get("power_command"):
            problem = 'the `command` sensor needs [sensors] power_command = ["argv", ...]'
        if problem:
            raise ConfigError(
                f"{path}: sensors.power: {spec!r}: {problem}", path=str(path), key="sensors.power"
            )


@dataclass(frozen=True)
class Budget:
    """Limits per metric (BUDGET_METRICS keys) plus run conditions (CONDITION_KEYS)."""

    limits: dict[str, float]

    def with_overrides(self, overrides: dict[str, float]) -> Budget:
        return Budget({**self.limits, **overrides})

    def metric_limits(self) -> dict[str, float]:
        return {k: v for k, v in self.limits.items() if k in BUDGET_METRICS}

    @property
    def max_start_temp_c(self) -> float | None:
        return self.limits.get("max_start_temp_c")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    facts: ProfileFacts
    sensors: ProfileSensors
    budget: Budget
    sources: dict[str, str]
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path),
            "facts": vars(self.facts),
            "sensors": {
                **vars(self.sensors),
                "power": list(self.sensors.power),
                "power_command": list(self.sensors.power_command),
            },
            "budgets": dict(self.budget.limits),
            "sources": dict(self.sources),
        }


def parse_profile(data: dict[str, Any], path: Path) -> DeviceProfile:
    """Validate a parsed profile TOML and build the profile (pure apart from the path label)."""
    validate(data, PROFILE_SCHEMA, path)
    if data["name"] != path.stem:
        raise ConfigError(
            f"{path}: name: expected {path.stem!r} (the file name), got {data['name']!r}",
            path=str(path),
            key="name",
        )
    sensors = data.get("sensors", {})
    _check_power_specs(sensors, path)
    return DeviceProfile(
        name=data["name"],
        description=data.get("description", ""),
        facts=ProfileFacts(**data["facts"]),
        sensors=ProfileSensors(
            thermal_zone=sensors.get("thermal_zone", ""),
            throttle=sensors.get("throttle", "none"),
            power=tuple(sensors.get("power", ())),
            power_command=tuple(sensors.get("power_command", ())),
            power_command_unit=sensors.get("power_command_unit", "W"),
            sample_interval_ms=sensors.get("sample_interval_ms"),
        ),
        budget=Budget({k: float(v) for k, v in data.get("budgets", {}).items()}),
        sources=dict(data.get("sources", {})),
        path=path,
    )


def load_profile_file(path: Path) -> DeviceProfile:
    return parse_profile(read_toml(path), path)


def profile_dirs() -> list[Path]:
    """User profiles (EDGEKIT_HOME/profiles) shadow the bundled ones of the same name."""
    return [user_profiles_dir(), bundled_profiles_dir()]


def _profile_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in profile_dirs():
        if directory.is_dir():
            for file in sorted(directory.glob("*.toml")):
                found.setdefault(file.stem, file)
    return found


def profile_names() -> list[str]:
    return sorted(_profile_files())


def load_profile(name_or_path: str) -> DeviceProfile:
    """A profile by name (user dir first, then bundled) or by path to a .toml file."""
    if name_or_path.endswith(".toml"):
        return load_profile_file(Path(name_or_path))
    files = _profile_files()
    if name_or_path not in files:
        close = difflib.get_close_matches(name_or_path, list(files), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownProfileError(
            f"unknown profile {name_or_path!r}{hint}; known: {', '.join(sorted(files))}",
            profile=name_or_path,
        )
    return load_profile_file(files[name_or_path])


def list_profiles() -> list[DeviceProfile]:
    return [load_profile_file(path) for _, path in sorted(_profile_files().items())]


def parse_budget_overrides(items: list[str]) -> dict[str, float]:
    """`["latency_p90_ms=20", ...]` -> {"latency_p90_ms": 20.0}; unknown keys and bad numbers fail."""
    known = list(BUDGET_METRICS) + list(CONDITION_KEYS)
    overrides: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--budget {item!r}: expected METRIC=VALUE, e.g. latency_p90_ms=20")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"--budget {item!r}: unknown metric {key!r}{hint}; known: {', '.join(known)}")
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(
                f"--budget {item!r}: {raw.strip()!r} is not a number ({_unit_of(key)}; "
                "the unit is in the metric name)"
            ) from None
        if not value >= 0 or value == float("inf"):
            raise UsageError(f"--budget {item!r}: expected a finite number >= 0")
        overrides[key] = value
    return overrides
