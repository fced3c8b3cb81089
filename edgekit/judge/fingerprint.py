"""Run fingerprints: what must match for two runs to be comparable."""

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
)


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
    }
    fingerprint["hash"] = fingerprint_hash(fingerprint)
    return fingerprint


def fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    """sha256 over the comparable keys only (same hash = same conditions)."""
    subset = {key: fingerprint.get(key) for key in COMPARABLE_KEYS}
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()[:16]


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Comparable keys whose values differ, ignoring the artifact (compared runs differ there)."""
    return {
        key: (a.get(key), b.get(key))
        for key in COMPARABLE_KEYS
        if key != "artifact_sha256" and a.get(key) != b.get(key)
    }
