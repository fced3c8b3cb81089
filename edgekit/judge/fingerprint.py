"""Run fingerprints: what must match for two runs to be comparable.

The accelerator keys (ACCELERATOR_KEYS: the providers that executed nodes, their options and
library versions, the TFLite delegates applied, a Jetson's power mode and jetson_clocks) are
absent from runs recorded before they existed. They enter the hash only when recorded, so the
hash of an older run is unchanged. What every run had before they existed is not recorded
either: a run whose nodes all ran on the CPU provider, the onnxruntime version (already
`runtime_version`), TFLite's default XNNPACK. So a plain CPU run keeps the fingerprint of the
same run recorded before edgekit knew accelerators.
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


# What runs had before accelerators were recorded (left out of the fingerprint, see above).
_CPU_ONLY = (["CPUExecutionProvider"], ["cpu"], [])
_RUNTIME_PACKAGES = ("onnxruntime",)
_DEFAULT_DELEGATES = (["xnnpack"],)


def providers_used(runtime: dict[str, Any]) -> list[str] | None:
    """The onnxruntime providers that executed at least one node (runtime.placement.by_provider),
    sorted; None when the run has no placement, for a TFLite run (its `delegate` says it) and when
    every node ran on the CPU provider (as every run recorded before placement did).
    session.get_providers() is not used: it lists providers that got no node."""
    placement = runtime.get("placement")
    by_provider = placement.get("by_provider") if isinstance(placement, dict) else None
    if not isinstance(by_provider, dict) or placement.get("source") == "tflite_ops":
        return None
    used = sorted(name for name, entry in by_provider.items() if int((entry or {}).get("nodes") or 0) > 0)
    return None if used in _CPU_ONLY else used


def provider_library_versions(runtime: dict[str, Any]) -> dict[str, str] | None:
    """runtime.provider_versions without onnxruntime's own (it is `runtime_version`), sorted;
    None when nothing else is left (a CPU run)."""
    versions = runtime.get("provider_versions")
    if not isinstance(versions, dict):
        return None
    kept = {str(k): str(v) for k, v in sorted(versions.items()) if k not in _RUNTIME_PACKAGES}
    return kept or None


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
    none (`--delegate none`), None when the run does not say (ONNX, older runs) and for XNNPACK
    alone (what TFLite applies by default, so what runs recorded before this key had)."""
    delegate = runtime.get("delegate")
    if not isinstance(delegate, dict) or delegate.get("applied") is None:
        return None
    applied = sorted(str(name) for name in delegate["applied"])
    return None if applied in _DEFAULT_DELEGATES else applied


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
        "provider_versions": provider_library_versions(runtime),
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
    """Comparable keys whose values differ, ignoring the artifact (compared runs differ there).
    An accelerator key that is None is the plain CPU / default state, the same as in a run recorded
    before the key existed; one recorded on one side only is a difference (e.g. a power mode)."""
    return {
        key: (a.get(key), b.get(key))
        for key in COMPARABLE_KEYS
        if key != "artifact_sha256" and a.get(key) != b.get(key)
    }
