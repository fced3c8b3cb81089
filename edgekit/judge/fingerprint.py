"""Run fingerprints: what must match for two runs to be comparable.

The accelerator keys (ACCELERATOR_KEYS: the providers that executed nodes, their options and
library versions, the TFLite delegates applied, a Jetson's power mode and jetson_clocks) are
absent from runs recorded before they existed. They enter the hash only when recorded, so the
hash of an older run is unchanged, and `differences` does not count one recorded on one side only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Keys that must be equal for two runs to be compared; temperatures are recorded, not matched.
COMPARABLE_KEYS = (
    "device",
    "machine",
    "cpu_model",
    "cores",
    "python",
    "runtime",
    "runtime_version",
    "providers",
    "threads",
    "governor",
    "max_freq_khz",
    "artifact_sha256",
    "providers_used",
    "provider_options",
    "provider_versions",
    "delegate",
    "power_mode",
    "jetson_clocks",
)
ACCELERATOR_KEYS = frozenset(
    {"providers_used", "provider_options", "provider_versions", "delegate", "power_mode", "jetson_clocks"}
)
# Provider option keys that name a place on the board, not a condition (TensorRT's cache paths).
_PATH_OPTION_SUFFIXES = ("_path", "_file", "_dir")


def providers_used(runtime: dict[str, Any]) -> list[str] | None:
    """The providers that executed at least one node (runtime.placement.by_provider), sorted;
    None when the run has no placement. session.get_providers() is not used: it lists providers
    that got no node."""
    placement = runtime.get("placement")
    by_provider = placement.get("by_provider") if isinstance(placement, dict) else None
    if not isinstance(by_provider, dict):
        return None
    return sorted(name for name, used in by_provider.items() if int((used or {}).get("nodes") or 0) > 0)


def comparable_provider_options(runtime: dict[str, Any]) -> dict[str, dict[str, str]] | None:
    """runtime.provider_options without the options that only name a path on the board (keys
    ending in _path, _file or _dir), and without providers left with no option; None when empty."""
    options = runtime.get("provider_options")
    if not isinstance(options, dict):
        return None
    kept = {
        provider: {k: str(v) for k, v in sorted(values.items()) if not k.endswith(_PATH_OPTION_SUFFIXES)}
        for provider, values in sorted(options.items())
        if isinstance(values, dict)
    }
    kept = {provider: values for provider, values in kept.items() if values}
    return kept or None


def applied_delegates(runtime: dict[str, Any]) -> list[str] | None:
    """The TFLite delegates that took part of the graph (runtime.delegate.applied), sorted; [] for
    none (`--delegate none`), None when the run does not say (ONNX, older runs)."""
    delegate = runtime.get("delegate")
    if not isinstance(delegate, dict) or delegate.get("applied") is None:
        return None
    return sorted(str(name) for name in delegate["applied"])


def build_fingerprint(
    device_name: str,
    facts: dict[str, Any],
    runtime: dict[str, Any],
    artifact_sha256: str,
    thermal: dict[str, Any],
    start_sensors: dict[str, Any],
) -> dict[str, Any]:
    cpufreq = start_sensors.get("cpufreq") or []
    first_cpu = cpufreq[0] if cpufreq else {}
    fingerprint: dict[str, Any] = {
        "device": device_name,
        "machine": facts.get("machine"),
        "cpu_model": facts.get("cpu_model"),
        "cores": facts.get("cores"),
        "python": facts.get("python"),
        "runtime": runtime.get("name"),
        "runtime_version": runtime.get("version"),
        "providers": runtime.get("providers"),
        "threads": runtime.get("threads"),
        "governor": first_cpu.get("governor", facts.get("governor")),
        "cur_freq_khz": first_cpu.get("cur_khz", facts.get("cur_freq_khz")),
        "max_freq_khz": first_cpu.get("max_khz", facts.get("max_freq_khz")),
        "artifact_sha256": artifact_sha256,
        "temp_start_c": thermal.get("start_c"),
        "temp_end_c": thermal.get("end_c"),
        "throttled": thermal.get("throttled"),
        "providers_used": providers_used(runtime),
        "provider_options": comparable_provider_options(runtime),
        "provider_versions": dict(sorted(runtime["provider_versions"].items()))
        if runtime.get("provider_versions")
        else None,
        "delegate": applied_delegates(runtime),
        "power_mode": start_sensors.get("power_mode", facts.get("power_mode")),
        "jetson_clocks": start_sensors.get("jetson_clocks", facts.get("jetson_clocks")),
        "accelerated_fraction": ((runtime.get("placement") or {}).get("accelerated_fraction")),
    }
    fingerprint["hash"] = fingerprint_hash(fingerprint)
    return fingerprint


def fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    """sha256 over the comparable keys only (same hash = same conditions); an accelerator key
    that was not recorded (None) is left out, so runs recorded before it keep their hash."""
    subset = {
        key: fingerprint.get(key)
        for key in COMPARABLE_KEYS
        if key not in ACCELERATOR_KEYS or fingerprint.get(key) is not None
    }
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()[:16]


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Comparable keys whose values differ, ignoring the artifact (compared runs differ there) and
    an accelerator key recorded in one run only (the other was recorded before it existed)."""
    return {
        key: (a.get(key), b.get(key))
        for key in COMPARABLE_KEYS
        if key != "artifact_sha256"
        and a.get(key) != b.get(key)
        and not (key in ACCELERATOR_KEYS and (a.get(key) is None or b.get(key) is None))
    }
