"""`devices doctor`: what a board has and lacks, with the exact install line (pure)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

MIN_DISK_FREE_BYTES = 500 * 1024 * 1024
RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "tflite": "ai-edge-litert"}


@dataclass(frozen=True)
class Check:
    item: str
    status: str  # "ok", "missing", "warn"
    detail: str


def diagnose(facts: dict[str, Any], runtime: str, python: str = "python3") -> tuple[list[Check], str | None]:
    """Checks for the agent's needs on this board, and the pip line that installs what is missing."""
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
