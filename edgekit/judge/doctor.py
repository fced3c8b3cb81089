"""`devices doctor`: what a board has and lacks, with the exact install line (pure)."""

from __future__ import annotations

import shlex
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

MIN_DISK_FREE_BYTES = 500 * 1024 * 1024
RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "tflite": "ai-edge-litert"}


@dataclass(frozen=True)
class Check:
    item: str
    status: str  # "ok", "missing", "warn", "absent" (an optional accelerator the board lacks)
    detail: str


def diagnose(
    facts: dict[str, Any],
    runtime: str,
    python: str = "python3",
    sensors: dict[str, Any] | None = None,
    profile_power: list[str] | None = None,
    preferred: Collection[str] = (),
) -> tuple[list[Check], str | None]:
    """Checks for the agent's needs on this board, and the pip line that installs what is missing.

    `sensors` is the agent's `sensors` reply with `power_sensors` (the profile's, each tried) and
    `power_discovered` (every power sensor on the board) and `accelerators`; `preferred` the
    providers and delegate the profile's [accelerators] table names."""
    runtimes = facts.get("runtimes") or {}
    checks = [Check("python", "ok", str(facts.get("python")))]
    missing: list[str] = []
    if facts.get("numpy"):
        checks.append(Check("numpy", "ok", str(facts["numpy"])))
    else:
        checks.append(Check("numpy", "missing", "the agent needs numpy"))
        missing.append("numpy")
    tflite = runtimes.get("ai_edge_litert") or runtimes.get("tflite_runtime")
    have = {"onnxruntime": runtimes.get("onnxruntime"), "tflite": tflite}
    for name, version in have.items():
        needed = name == runtime
        if version:
            checks.append(Check(name, "ok", str(version)))
        elif needed:
            checks.append(Check(name, "missing", f"the profile's runtime is {runtime}"))
            missing.append(RUNTIME_PACKAGES[name])
        else:
            checks.append(Check(name, "warn", "not installed (not the profile's runtime)"))
    free = facts.get("disk_free_bytes")
    if free is None:
        checks.append(Check("disk", "warn", "free space unknown"))
    else:
        status = "ok" if free >= MIN_DISK_FREE_BYTES else "warn"
        checks.append(Check("disk", status, f"{free / 2**30:.1f} GiB free in {facts.get('workdir')}"))
    available = facts.get("memory_available_bytes")
    checks.append(
        Check(
            "memory",
            "ok" if available else "warn",
            f"{available / 2**20:.0f} MiB available" if available else "unknown",
        )
    )
    governor = facts.get("governor")
    checks.append(
        Check(
            "governor",
            "ok" if governor == "performance" else "warn",
            f"{governor}"
            + (
                ""
                if governor == "performance"
                else " (use 'performance' for stable timings: cpupower frequency-set -g performance)"
            )
            if governor
            else "no cpufreq (fixed clock or not exposed)",
        )
    )
    if sensors is not None:
        checks += power_checks(sensors, profile_power or [])
        checks += accelerator_checks(sensors.get("accelerators") or [], preferred)
    emulation = facts.get("emulation") or {}
    if facts.get("emulated"):
        checks.append(
            Check(
                "emulation",
                "warn",
                f"{facts.get('machine')} emulated by {emulation.get('emulator', 'an emulator')}"
                f" as {emulation.get('stands_for', 'a board')}: timings are not the board's",
            )
        )
    install = f"{shlex.quote(python)} -m pip install {' '.join(missing)}" if missing else None
    return checks, install


def accelerator_checks(accelerators: list[dict[str, Any]], preferred: Collection[str] = ()) -> list[Check]:
    """One check per onnxruntime provider and TFLite delegate the agent listed (docs/protocol.md,
    `sensors` with `accelerators`): ok when available; else (missing, with the exact install line,
    or loaded with no device here) warn when the profile's [accelerators] names it (`preferred`)
    and absent otherwise. A missing accelerator never fails doctor: a bench falls back to the ones
    the board has unless one is asked for explicitly."""
    checks = []
    for entry in accelerators:
        status = str(entry.get("status"))
        name = str(entry.get("name"))
        detail = str(entry.get("detail") or "")
        if status == "no_device":
            detail = f"no device here: {detail}"
        if entry.get("install"):
            detail = f"{detail}; install: {entry['install']}"
        judged = "ok" if status == "available" else "warn" if name in preferred else "absent"
        checks.append(Check(f"{entry.get('kind')} {name}", judged, detail))
    return checks


def power_checks(sensors: dict[str, Any], profile_power: list[str]) -> list[Check]:
    """The profile's power sensors: found and read, or why not; then the others the board has."""
    checks = []
    tried = {entry.get("sensor"): entry for entry in sensors.get("power_sensors") or []}
    for spec in profile_power:
        entry = tried.get(spec) or {}
        if entry.get("ok"):
            unit = "J since opened" if entry.get("kind") == "energy" else "W"
            checks.append(
                Check(f"power {spec}", "ok", f"{entry.get('value', 0):.3f} {unit} ({entry.get('source')})")
            )
        else:
            checks.append(
                Check(f"power {spec}", "warn", f"{entry.get('reason', 'not tried')}: energy will be null")
            )
    if not profile_power:
        checks.append(Check("power", "warn", "the profile names no power sensor: energy will be null"))
    others = [
        f"{e['sensor']}{'' if e.get('ok') else ' (unreadable)'}"
        for e in sensors.get("power_discovered") or []
        if e.get("sensor") not in profile_power
    ]
    if others:
        checks.append(Check("other power sensors", "ok", ", ".join(others)))
    return checks
