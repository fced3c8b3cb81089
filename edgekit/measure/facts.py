"""What a device's agent reports about its board (`edgekit devices facts`) and what the board has
and lacks for edgekit (`edgekit devices doctor`): one agent session each, returning data.

The agent's `hello` and `sensors` replies are specified in docs/protocol.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgekit.core.errors import AgentError
from edgekit.judge.budgets import unjudgeable_metrics
from edgekit.judge.doctor import Check, diagnose
from edgekit.transport.agent_client import agent_session
from edgekit.transport.board import Board
from edgekit.transport.devices import Device


def device_facts(device: Device) -> dict[str, Any]:
    """`{"device": name, "agent_version": str | None, **hello facts, "sensors": sensors reply}`:
    the agent's facts (CPU, memory, runtimes, clocks) and its current sensor readings
    (`thermal_zones`: list of `{"zone", "type", "temp_c"}`, deg C). Needs no profile.
    Raises DeviceError (exit 3) when the device or its agent cannot be reached."""
    with agent_session(device.transport()) as client:
        hello = client.hello()
        sensors = client.sensors()
    return {
        "device": device.name,
        "agent_version": hello.get("agent_version"),
        **hello.get("facts", {}),
        "sensors": sensors,
    }


@dataclass(frozen=True)
class DoctorReport:
    """`checks` in display order; `install` is the one shell line that installs what is missing on
    the board (None when nothing is); `accelerators` the agent's list of onnxruntime providers and
    TFLite delegates (docs/protocol.md, `sensors`), each with its status and install line."""

    device: str
    checks: list[Check]
    install: str | None
    accelerators: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """`{"device", "checks": [{"item", "status", "detail"}], "install", "accelerators":
        [{"kind", "name", "status", "detail", "library", "install"}]}` (`--json`)."""
        return {
            "device": self.device,
            "checks": [vars(c) for c in self.checks],
            "install": self.install,
            "accelerators": self.accelerators,
        }


def doctor(board: Board) -> DoctorReport:
    """Ask the board's agent for its facts and for every power sensor it can find (the profile's
    ones tried first), then judge them with edgekit.judge.doctor.diagnose against the profile's
    runtime and sensors. Raises DeviceError (exit 3) when the device or its agent cannot be reached."""
    profile = board.profile
    with agent_session(board.device.transport()) as client:
        facts = client.hello().get("facts", {})
        sensors = client.sensors(
            {
                "power_sensors": list(profile.sensors.power),
                "sensor_options": profile.sensors.sensor_options(),
                "discover_power": True,
                "accelerators": True,
            }
        )
    ssh = board.device.ssh
    python = ssh.python if ssh else "python3"
    prefs = profile.accelerators
    preferred = [*prefs.providers, *([prefs.delegate] if prefs.delegate else [])]
    checks, install = diagnose(
        facts, profile.facts.runtime, python, sensors, list(profile.sensors.power), preferred
    )
    return DoctorReport(board.name, checks, install, list(sensors.get("accelerators") or []))


def power_problem_of(specs: list[str], checked: list[dict[str, Any]]) -> str | None:
    """Why none of the profile's power sensors works (the agent's per-sensor reasons, as a bench
    reports them), or None when one does."""
    if any(entry.get("ok") for entry in checked):
        return None
    if not specs:
        return "profile names no power sensor"
    reasons = []
    for entry in checked:
        sensor, reason = str(entry.get("sensor")), str(entry.get("reason") or "not readable")
        reasons.append(reason if sensor in reason else f"{sensor}: {reason}")
    return "; ".join(reasons)


def unjudgeable_on(board: Board) -> dict[str, str]:
    """The board's budgeted metrics its device can never measure, metric -> why
    (edgekit.judge.budgets.unjudgeable_metrics): energy when none of the profile's power sensors
    works there, timings on an emulated board. One agent session. Raises DeviceError (exit 3) when
    the device or its agent cannot be reached."""
    profile = board.profile
    specs = list(profile.sensors.power)
    with agent_session(board.device.transport()) as client:
        facts = client.hello().get("facts", {})
        sensors = client.sensors({"power_sensors": specs, "sensor_options": profile.sensors.sensor_options()})
    return unjudgeable_metrics(
        board.budget,
        device=board.name,
        emulated=bool(facts.get("emulated")),
        power_problem=power_problem_of(specs, sensors.get("power_sensors") or []),
    )


def check_providers_on(board: Board, providers: Sequence[str]) -> None:
    """Before any model is loaded: ask the board's agent which onnxruntime providers it has (its
    accelerator inventory, the `sensors` request with `"accelerators": true`, as `devices doctor`
    does; one agent session) and raise AgentError (ProviderMissing, exit 3; the message names
    the install line) for the first of `providers` (edgekit names) it lacks or that offers no
    device there. A provider the inventory does not list (an older agent) is left to the bench.
    Raises DeviceError (exit 3) when the device or its agent cannot be reached."""
    with agent_session(board.device.transport()) as client:
        inventory = client.sensors({"accelerators": True}).get("accelerators") or []
    status = {e.get("name"): e for e in inventory if isinstance(e, dict) and e.get("kind") == "provider"}
    for name in providers:
        entry = status.get(name)
        if entry is None or entry.get("status") == "available":
            continue
        install = f"; install: {entry['install']}" if entry.get("install") else ""
        raise AgentError(
            f"device {board.name!r}: provider check failed: ProviderMissing: provider {name}: "
            f"{entry.get('status')} ({entry.get('detail')}){install}",
            error_type="ProviderMissing",
            device=board.name,
            provider=name,
        )
