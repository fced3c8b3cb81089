"""A transport test double: the real local agent, whose bench replies report chosen artifacts as
slower than they are. For testing what callers do with a candidate that is slower on the device
(a runtime whose int8 kernels lose to float, say) on a machine where it is not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from edgekit.core.artifacts import Artifact
from edgekit.transport.base import AgentChannel, StagedFile, Transport


class _SlowingChannel:
    def __init__(self, inner: AgentChannel, is_slow: Callable[[str], bool], factor: float) -> None:
        self._inner = inner
        self._is_slow = is_slow
        self._factor = factor
        self._slow_requests: set[object] = set()

    def send_line(self, line: str) -> None:
        request = json.loads(line)
        params = request.get("params") or {}
        if request.get("op") == "bench" and self._is_slow(str(params.get("artifact", ""))):
            self._slow_requests.add(request.get("id"))
        self._inner.send_line(line)

    def read_line(self, timeout_s: float | None) -> str | None:
        line = self._inner.read_line(timeout_s)
        if line is None:
            return None
        reply = json.loads(line)
        result = reply.get("result")
        if reply.get("id") in self._slow_requests and reply.get("ok") and isinstance(result, dict):
            result["latencies_ns"] = [int(ns * self._factor) for ns in result["latencies_ns"]]
            return json.dumps(reply)
        return line

    def stderr_tail(self) -> str:
        return self._inner.stderr_tail()

    def close(self) -> None:
        self._inner.close()


class SlowedTransport:
    """Wraps a transport; benchmarks of artifacts whose path on the device satisfies `is_slow`
    report every latency multiplied by `factor` (the known ground truth a test checks against)."""

    def __init__(self, inner: Transport, is_slow: Callable[[str], bool], factor: float = 2.0) -> None:
        self._inner = inner
        self._is_slow = is_slow
        self._factor = factor
        self.device_name = inner.device_name

    def start_agent(self) -> AgentChannel:
        return _SlowingChannel(self._inner.start_agent(), self._is_slow, self._factor)

    def stage_file(self, path: Path, sha256: str) -> StagedFile:
        return self._inner.stage_file(path, sha256)

    def stage_artifact(self, artifact: Artifact) -> StagedFile:
        return self._inner.stage_artifact(artifact)

    def close(self) -> None:
        self._inner.close()
