"""Typed failures that become protocol error replies, and the agent's stderr log."""

from __future__ import annotations

import re
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


# onnxruntime's status prefix, e.g. "[ONNXRuntimeError] : 11 : EP_FAIL : "
ORT_STATUS_RE = re.compile(r"\[ONNXRuntimeError\] : \d+ : (\w+) : ")
# where onnxruntime threw: "/onnxruntime_src/.../file.cc:393 " then the function's signature
SOURCE_RE = re.compile(r"(?:^|\s)\S+\.(?:cc|cpp|cxx|cu|c|h|hpp):\d+\s+")


def _skip_signature(text: str, start: int) -> int:
    """The index after a C++ signature starting at `start` (up to its balanced parameter list,
    then `const`/`noexcept`/`override` and a GCC `[with T = ...]`), or `start` when none is there."""
    paren = text.find("(", start)
    if paren < 0:
        return start
    depth = 0
    for end in range(paren, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            break
    else:
        return start
    rest = re.match(r"(?:\s*(?:const|noexcept|override)\b)*(?:\s*\[with [^\]]*\])?\s*", text[end + 1 :])
    return end + 1 + (rest.end() if rest else 0)


def runtime_reason(message: str) -> str:
    """onnxruntime's error text without its C++ source locations and function signatures
    (`/path/file.cc:123 virtual ... Fn(args)`) and with one status prefix: "EP_FAIL: reason".
    The first line only; pure."""
    text = message.strip().splitlines()[0] if message.strip() else ""
    codes = ORT_STATUS_RE.findall(text)
    text = ORT_STATUS_RE.sub(" ", text)
    while True:
        found = SOURCE_RE.search(text)
        if found is None:
            break
        text = text[: found.start()] + " " + text[_skip_signature(text, found.end()) :]
    text = " ".join(text.split())
    return "%s: %s" % (codes[-1], text) if codes else text


def log(message: str) -> None:
    sys.stderr.write("edgekit-agent: %s\n" % message)
    sys.stderr.flush()
