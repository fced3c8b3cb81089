"""The Jetson power mode: `nvpmodel -q` (needs no root)."""

from __future__ import annotations

import re
import shutil
from typing import Any, Dict, Optional

from edgekit_agent.command import run_sensor_command
from edgekit_agent.failure import AgentFailure


def parse_nvpmodel(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """`nvpmodel -q`: "NV Power Mode: MAXN" then the numeric id on the next line, possibly
    after "NVPM WARN" lines [JTOP nvpmodel.py]."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for index, line in enumerate(lines):
        match = re.match(r"^NV Power Mode: (\S+)", line)
        if match:
            ids = [int(rest) for rest in lines[index + 1 :] if re.fullmatch(r"\d+", rest)]
            return {"mode": match.group(1), "id": ids[0] if ids else None}
    return None


def read_nvpmodel() -> Optional[Dict[str, Any]]:
    """Jetson power mode, when nvpmodel exists on PATH."""
    nvpmodel = shutil.which("nvpmodel")
    if not nvpmodel:
        return None
    try:
        return parse_nvpmodel(run_sensor_command([nvpmodel, "-q"]))
    except AgentFailure as failure:
        return {"mode": None, "id": None, "reason": failure.message}
