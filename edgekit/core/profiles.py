"""Device profiles: what a board is and the budgets a model must meet on it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, ValidationInfo, create_model, field_validator, model_validator

from edgekit.core.accelerators import (
    AcceleratorPrefs,
    check_delegate,
    check_delegate_options,
    check_provider_names,
    provider_name,
)
from edgekit.core.config import (
    ConfigModel,
    integer,
    json_schema,
    number,
    one_of,
    read_toml,
    text,
    validate_model,
)
from edgekit.core.errors import ConfigError, UnknownProfileError, UsageError, warn
from edgekit.core.resources import bundled_profiles_dir, user_profiles_dir

# Budget metrics: key -> what it limits. A result is within budget when value <= limit, except
# for the MINIMUM_METRICS (value >= limit).
BUDGET_METRICS: dict[str, str] = {
    "latency_p50_ms": "median inference latency, milliseconds",
    "latency_p90_ms": "90th percentile inference latency, milliseconds",
    "latency_p99_ms": "99th percentile inference latency, milliseconds",
    "cold_start_ms": "model load + first inference, milliseconds",
    "peak_rss_mb": "peak resident memory of the benchmark process, MiB",
    "model_size_mb": "artifact size on disk, MiB",
    "energy_mj_per_inference": "energy per inference above idle, millijoules",
    "min_accelerated_fraction": "fraction 0-1 of graph nodes an accelerator executed (at least)",
}
# Metrics whose limit is a minimum: within budget when value >= limit.
MINIMUM_METRICS = frozenset({"min_accelerated_fraction"})
# Run conditions, not result metrics: a run waits until the board is cool enough.
CONDITION_KEYS: dict[str, str] = {
    "max_start_temp_c": "temperature the watched zone must be below before timing, deg C",
}

_UNITS = {
    "ms": "milliseconds",
    "mb": "MiB",
    "mj_per_inference": "millijoules",
    "c": "degrees C",
    "fraction": "fraction 0-1",
}


def _unit_of(key: str) -> str:
    for suffix, unit in _UNITS.items():
        if key.endswith("_" + suffix):
            return unit
    return "number"


Arch = Literal["aarch64", "armv7l", "x86_64", "any"]
Runtime = Literal["onnxruntime", "tflite"]
Int8Scheme = Literal["u8s8", "s8s8"]
Throttle = Literal["none", "rpi-firmware", "jetson"]
PowerUnit = Literal["W", "J"]


class ProfileFacts(ConfigModel):
    """[facts]: what the board is. 0 for cores/memory/threads means "the host's" (profile `local`)."""

    arch: Arch = one_of(get_args(Arch), default=...)
    cores: int = integer("CPU cores; 0 = the host's", default=...)
    memory_mb: int = integer("RAM in MiB; 0 = the host's", default=...)
    runtime: Runtime = one_of(get_args(Runtime), default=...)
    int8_scheme: Int8Scheme = one_of(get_args(Int8Scheme), default=...)
    reduce_range: bool | Literal["host"] = Field(
        description='true, false, or "host": true on an x86 host without VNNI/AMX (profile local)'
    )
    default_threads: int = integer("threads; 0 = all cores", default=...)


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
_OPTIONAL_ARGUMENT = tuple(kind for kind in POWER_SENSOR_KINDS if kind not in _NEEDS_ARGUMENT)
# The same rules for the JSON Schema (kind names are plain [a-z0-9-], no regex escaping needed).
POWER_SPEC_PATTERN = f"^(({'|'.join(_NEEDS_ARGUMENT)}):.+|({'|'.join(_OPTIONAL_ARGUMENT)})(:.*)?)$"


def _power_spec_problem(spec: str, has_command: bool) -> str | None:
    kind, _, argument = spec.partition(":")
    if kind not in POWER_SENSOR_KINDS:
        close = difflib.get_close_matches(kind, list(POWER_SENSOR_KINDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown sensor kind {kind!r}{hint}; known: {', '.join(POWER_SENSOR_KINDS)}"
    if kind in _NEEDS_ARGUMENT and not argument:
        return f"expected {POWER_SENSOR_KINDS[kind]}"
    if kind == "command" and not has_command:
        return 'the `command` sensor needs [sensors] power_command = ["argv", ...]'
    return None


class ProfileSensors(ConfigModel):
    """[sensors]: where the agent reads temperature, throttling and power on this board.

    `power_command` is declared before `power` so that `power`'s check can see it.
    """

    model_config = ConfigModel.model_config | {
        "json_schema_extra": {  # the `command` sensor needs power_command
            "if": {
                "properties": {"power": {"contains": {"pattern": "^command(:|$)"}}},
                "required": ["power"],
            },
            "then": {"required": ["power_command"]},
        }
    }

    thermal_zone: str = text("a thermal zone type, '' = hottest zone", default="")
    throttle: Throttle = one_of(get_args(Throttle), default="none")
    power_command: tuple[str, ...] = Field(
        default=(),
        strict=False,  # TOML gives a list; kept as a tuple
        min_length=1,
        description='a command line as a list, e.g. ["meter", "--watts"] (the `command` sensor)',
    )
    power: tuple[str, ...] = Field(
        default=(),
        strict=False,
        description="a list of sensor names",
        json_schema_extra={"items": {"type": "string", "pattern": POWER_SPEC_PATTERN}},
    )
    power_command_unit: PowerUnit = one_of(get_args(PowerUnit), default="W")
    sample_interval_ms: float | None = number("milliseconds between power readings", minimum=0, above=True)

    @field_validator("power")
    @classmethod
    def _known_power_specs(cls, power: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for spec in power:
            problem = _power_spec_problem(spec, bool(info.data.get("power_command")))
            if problem:
                raise ValueError(f"{spec!r}: {problem}")
        return power

    def sensor_options(self) -> dict[str, Any]:
        """What the agent needs besides the sensor names (bench param `sensor_options`)."""
        options: dict[str, Any] = {"power_command_unit": self.power_command_unit}
        if self.power_command:
            options["power_command"] = list(self.power_command)
        if self.sample_interval_ms is not None:
            options["sample_interval_ms"] = self.sample_interval_ms
        return options


ProviderOptions = dict[str, dict[str, str]]


class ProfileAccelerators(ConfigModel):
    """[accelerators]: the board's preferred onnxruntime providers and TFLite delegate
    (edgekit.core.accelerators). Without --provider a bench sends this list and the agent uses
    the providers the board has, in this order (chosen_by "profile")."""

    providers: tuple[str, ...] = Field(
        default=(),
        strict=False,
        description="onnxruntime providers by edgekit name (cpu, cuda, tensorrt, openvino, ggml, qnn, "
        "coreml, xnnpack) or onnxruntime's (CUDAExecutionProvider), preferred first, "
        'e.g. ["tensorrt", "cpu"]',
        json_schema_extra={"items": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}, "minItems": 1},
    )
    provider_options: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="a table per provider of option strings, e.g. [accelerators.provider_options.tensorrt]",
    )
    delegate: str | None = text("TFLite delegate: default, xnnpack, none, gpu, edgetpu or a library path")
    delegate_options: dict[str, str] = Field(
        default_factory=dict, description="a table of option strings for the delegate"
    )

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, providers: tuple[str, ...]) -> tuple[str, ...]:
        if not providers:
            raise ValueError(
                "[] names no provider: leave the key out for onnxruntime's default (the CPU), "
                'or list some, e.g. ["tensorrt", "cpu"]'
            )
        try:
            return check_provider_names(providers, flag="providers")
        except UsageError as exc:
            raise ValueError(exc.message.removeprefix("providers ")) from None

    @field_validator("provider_options")
    @classmethod
    def _options_of_listed(cls, options: ProviderOptions, info: ValidationInfo) -> ProviderOptions:
        listed = info.data.get("providers") or ()
        named: ProviderOptions = {}
        for given, values in options.items():
            try:
                name = provider_name(given, flag="options for")
            except UsageError as exc:
                raise ValueError(exc.message) from None
            if name not in listed:
                shown = ", ".join(listed) or "none"
                raise ValueError(f"options for {given!r}, which is not in providers ({shown})")
            if name in named:
                raise ValueError(f"options for {name!r} given twice (as {given!r} too)")
            named[name] = values
        return named

    @field_validator("delegate")
    @classmethod
    def _known_delegate(cls, delegate: str | None) -> str | None:
        if delegate is None:
            return None
        try:
            return check_delegate(delegate)
        except UsageError as exc:
            raise ValueError(exc.message.removeprefix("--delegate ")) from None

    @model_validator(mode="after")
    def _delegate_takes_options(self) -> ProfileAccelerators:
        """delegate_options go to an external delegate only (gpu, edgetpu, a library path)."""
        try:
            check_delegate_options(self.delegate_options, self.delegate)
        except UsageError as exc:
            raise ValueError(exc.message.replace("--delegate-option ", "delegate_options ", 1)) from None
        return self

    def prefs(self) -> AcceleratorPrefs:
        return AcceleratorPrefs(
            providers=self.providers,
            provider_options=self.provider_options,
            delegate=self.delegate,
            delegate_options=self.delegate_options,
        )


def _upper_bound(key: str) -> dict[str, float]:
    """A fraction is at most 1."""
    return {"le": 1} if key.endswith("_fraction") else {}


# [budgets]: every key optional (absent = no budget for that metric); titles say what each limits.
ProfileBudgets = create_model(
    "ProfileBudgets",
    __base__=ConfigModel,
    __doc__="[budgets]: limits per metric (value <= limit passes; for min_* metrics value >= limit) "
    "and run conditions.",
    **{
        key: (float | None, number(_unit_of(key), title=what, **_upper_bound(key)))
        for key, what in {**BUDGET_METRICS, **CONDITION_KEYS}.items()
    },
)


class ProfileFile(ConfigModel):
    """A device profile file, device_profiles/NAME.toml (or $EDGEKIT_HOME/profiles/NAME.toml)."""

    # An int bounded to 1, not Literal[1]: pydantic's Literal[1] would accept TOML's `true`.
    schema_version: int = Field(
        alias="schema",
        ge=1,
        le=1,
        description="1 (the profile schema version)",
        json_schema_extra={"const": 1},
    )
    name: str = text("the profile name, equal to the file name without .toml", default=...)
    description: str = text("a one-line description of the board", default="")
    facts: ProfileFacts
    sensors: ProfileSensors = Field(default_factory=ProfileSensors)
    budgets: ProfileBudgets = Field(default_factory=ProfileBudgets)  # type: ignore[valid-type]
    accelerators: ProfileAccelerators = Field(default_factory=ProfileAccelerators)
    sources: dict[str, str] = Field(
        default_factory=dict, description="a table of strings (where the numbers come from)"
    )


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a device profile TOML file (docs/schema/profile.schema.json)."""
    return json_schema(
        ProfileFile,
        title="edgekit device profile",
        description="A board kind and the budgets a model must meet on it (device_profiles/NAME.toml).",
    )


@dataclass(frozen=True)
class Budget:
    """Limits per metric (BUDGET_METRICS keys) plus run conditions (CONDITION_KEYS)."""

    limits: dict[str, float]

    def with_overrides(self, overrides: Mapping[str, float | None]) -> Budget:
        """These limits with `overrides` on top; a None override drops that budget."""
        merged = {**self.limits, **overrides}
        return Budget({key: value for key, value in merged.items() if value is not None})

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
    accelerators: ProfileAccelerators = field(default_factory=ProfileAccelerators)

    def to_dict(self) -> dict[str, Any]:
        sensors = self.sensors
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path),
            "facts": self.facts.model_dump(),
            "sensors": {
                "thermal_zone": sensors.thermal_zone,
                "throttle": sensors.throttle,
                "power": list(sensors.power),
                "power_command": list(sensors.power_command),
                "power_command_unit": sensors.power_command_unit,
                "sample_interval_ms": sensors.sample_interval_ms,
            },
            "budgets": dict(self.budget.limits),
            "accelerators": self.accelerators.model_dump(mode="json", exclude_defaults=True),
            "sources": dict(self.sources),
        }


def parse_profile(data: dict[str, Any], path: Path) -> DeviceProfile:
    """Validate a parsed profile TOML and build the profile (pure apart from the path label).

    Raises ConfigError (one line: file, key, expectation) for anything ProfileFile rejects and
    for a `name` other than the file name.
    """
    profile = validate_model(ProfileFile, data, path)
    if profile.name != path.stem:
        raise ConfigError(
            f"{path}: name: expected {path.stem!r} (the file name), got {profile.name!r}",
            path=str(path),
            key="name",
        )
    return DeviceProfile(
        name=profile.name,
        description=profile.description,
        facts=profile.facts,
        sensors=profile.sensors,
        budget=Budget(profile.budgets.model_dump(exclude_none=True)),
        sources=dict(profile.sources),
        path=path,
        accelerators=profile.accelerators,
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
    """Every profile, bundled and the user's, by name. One that does not load (a user's file with
    a wrong key) is left out with a warning naming the file and the fault, so one broken file
    does not hide the others; loading it by name still fails (ConfigError, exit 2)."""
    profiles = []
    for _, path in sorted(_profile_files().items()):
        try:
            profiles.append(load_profile_file(path))
        except ConfigError as exc:
            warn(f"{exc.message} (left out of the list)")
    return profiles


def parse_budget_overrides(items: list[str]) -> dict[str, float | None]:
    """`["latency_p90_ms=20", "energy_mj_per_inference=none"]` -> {"latency_p90_ms": 20.0,
    "energy_mj_per_inference": None}: `none` drops the profile's budget for that metric (one a
    device cannot measure, so that --strict can pass there). Unknown keys and bad numbers raise
    UsageError (exit 2)."""
    known = list(BUDGET_METRICS) + list(CONDITION_KEYS)
    overrides: dict[str, float | None] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--budget {item!r}: expected METRIC=VALUE, e.g. latency_p90_ms=20")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"--budget {item!r}: unknown metric {key!r}{hint}; known: {', '.join(known)}")
        if raw.strip().lower() == "none":
            overrides[key] = None
            continue
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(
                f"--budget {item!r}: {raw.strip()!r} is not a number ({_unit_of(key)}; "
                "the unit is in the metric name) or none (no budget)"
            ) from None
        if not value >= 0 or value == float("inf"):
            raise UsageError(f"--budget {item!r}: expected a finite number >= 0")
        if key.endswith("_fraction") and value > 1:
            raise UsageError(f"--budget {item!r}: expected a fraction between 0 and 1")
        overrides[key] = value
    return overrides
