"""Typed failures that become protocol error replies, and the agent's stderr log."""

from __future__ import annotations

import sys
from typing import Any, Dict

# Error types inside sensor reports (never a bench error), see docs/protocol.md.
SENSOR_UNAVAILABLE = "SensorUnavailable"
SENSOR_GARBAGE = "SensorGarbage"


class AgentFailure(Exception):
    """An error that becomes an error reply of the given protocol type."""

    def __init__(self, error_type: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.data = data

    def to_reply(self) -> Dict[str, Any]:
        return {"type": self.error_type, "message": self.message, "data": self.data}


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def log(message: str) -> None:
    sys.stderr.write("edgekit-agent: %s\n" % message)
    sys.stderr.flush()
