"""The Jetson power mode (`nvpmodel -q`, needs no root) and whether jetson_clocks is on
(`jetson_clocks --show`, needs root): each tool run only when it exists on PATH, with
command.COMMAND_TIMEOUT_S, parsed by facts/jetson.py (formats: docs/reference/jetson-tools.md)."""

from __future__ import annotations

import shutil
from typing import Any, Dict, Optional

from edgekit_agent.command import run_sensor_command
from edgekit_agent.facts.jetson import ROOT_ERROR, parse_jetson_clocks, parse_nvpmodel
from edgekit_agent.failure import AgentFailure


def read_nvpmodel() -> Optional[Dict[str, Any]]:
    """Jetson power mode {"mode", "id"}, when nvpmodel exists on PATH (None otherwise); a tool
    that fails or times out gives {"mode": None, "id": None, "reason"}."""
    nvpmodel = shutil.which("nvpmodel")
    if not nvpmodel:
        return None
    try:
        return parse_nvpmodel(run_sensor_command([nvpmodel, "-q"]))
    except AgentFailure as failure:
        return {"mode": None, "id": None, "reason": failure.message}


def read_jetson_clocks() -> Optional[Dict[str, Any]]:
    """`jetson_clocks --show` parsed (facts.jetson.parse_jetson_clocks), when the tool exists on
    PATH (None otherwise). Not root, a failure or a timeout: {"on": None, "reason"}."""
    tool = shutil.which("jetson_clocks")
    if not tool:
        return None
    try:
        return parse_jetson_clocks(run_sensor_command([tool, "--show"]))
    except AgentFailure as failure:  # without root it exits non-zero after the error line
        reason = failure.message
        if ROOT_ERROR in reason:
            reason = "not root: " + reason
        return {"on": None, "reason": reason}


def jetson_facts() -> Dict[str, Any]:
    """`hello` facts: power_mode (str | None), power_mode_id (int | None) and jetson_clocks
    (bool | None: None when it cannot be known, e.g. not root, or off a Jetson). Never raises."""
    mode = read_nvpmodel() or {}
    clocks = read_jetson_clocks() or {}
    return {
        "power_mode": mode.get("mode"),
        "power_mode_id": mode.get("id"),
        "jetson_clocks": clocks.get("on"),
    }
