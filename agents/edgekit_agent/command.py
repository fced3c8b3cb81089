"""Run a board tool (vcgencmd, nvpmodel, an external meter) and return what it printed."""

from __future__ import annotations

import subprocess
from typing import List

from edgekit_agent.failure import SENSOR_UNAVAILABLE, AgentFailure, first_line

COMMAND_TIMEOUT_S = 5.0


def run_sensor_command(argv: List[str]) -> str:
    """stdout of argv; a failure to start, a timeout or a non-zero exit raises SensorUnavailable."""
    try:
        done = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AgentFailure(SENSOR_UNAVAILABLE, "%s failed: %s" % (argv[0], first_line(exc))) from None
    output = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        detail = (done.stderr.decode("utf-8", "replace").strip() or output.strip())[:80]
        raise AgentFailure(
            SENSOR_UNAVAILABLE,
            "%s exited %d%s" % (" ".join(argv), done.returncode, ": " + detail if detail else ""),
        )
    return output
