"""The Jetson power mode: `nvpmodel -q` (needs no root), parsed by facts/jetson.py."""

from __future__ import annotations

import shutil
from typing import Any, Dict, Optional

from edgekit_agent.command import run_sensor_command
from edgekit_agent.facts.jetson import parse_nvpmodel
from edgekit_agent.failure import AgentFailure


def read_nvpmodel() -> Optional[Dict[str, Any]]:
    """Jetson power mode, when nvpmodel exists on PATH."""
    nvpmodel = shutil.which("nvpmodel")
    if not nvpmodel:
        return None
    try:
        return parse_nvpmodel(run_sensor_command([nvpmodel, "-q"]))
    except AgentFailure as failure:
        return {"mode": None, "id": None, "reason": failure.message}
