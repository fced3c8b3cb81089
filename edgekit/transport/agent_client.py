"""Speaks the agent protocol (docs/protocol.md) over any AgentChannel."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from edgekit.core.errors import (
    AGENT_INPUT_ERROR_TYPES,
    AgentError,
    CancelledError,
    DeviceError,
    EdgekitError,
    ModelError,
)
from edgekit.transport.base import AgentChannel, Transport

PROTOCOL_VERSION = 1
EXIT_INTERNAL = 70  # as the CLI's: a bug in edgekit (docs/results.md, "Exit codes")


class AgentInternalError(EdgekitError):
    """The agent failed on a bug of its own (error type ``Internal``): neither the device nor the
    user's model or inputs are at fault, so it is not exit 3 (device) but 70 (a bug in edgekit)."""

    exit_code = EXIT_INTERNAL


ProgressCallback = Callable[[dict[str, Any]], None]
CANCEL_POLL_S = 0.25  # how often a request waiting for its reply looks at the cancel event


class AgentClient:
    """One agent session's requests. `cancel` (an event another thread sets: a fleet's main
    thread on Ctrl-C) makes a request waiting for its reply raise CancelledError within
    CANCEL_POLL_S; agent_session then stops the agent's bench child (abort)."""

    def __init__(
        self, channel: AgentChannel, device_name: str, cancel: threading.Event | None = None
    ) -> None:
        self._channel = channel
        self.device_name = device_name
        self._ids = itertools.count(1)
        self._cancel = cancel
        self.in_flight: str | None = None  # the op of the request waiting for its reply

    def request(
        self,
        op: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float = 60.0,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Send one request; return its result or raise. `timeout_s` bounds silence, not the total."""
        request_id = next(self._ids)
        message: dict[str, Any] = {"id": request_id, "op": op}
        if params is not None:
            message["params"] = params
        self._channel.send_line(json.dumps(message))
        self.in_flight = op
        while True:
            line = self._read_line(op, timeout_s)
            if line is None:
                tail = self._channel.stderr_tail()
                raise DeviceError(
                    f"device {self.device_name!r}: the agent exited during {op!r}"
                    + (f": {tail}" if tail else ""),
                    device=self.device_name,
                    op=op,
                )
            reply = self._decode(line)
            if reply is None or reply.get("id") != request_id:
                continue  # a stray line, or a reply to an earlier request: not ours
            if reply.get("event") == "progress":
                if on_progress is not None:
                    on_progress(reply)
                continue
            self.in_flight = None
            if reply.get("ok") is True:
                result = reply.get("result")
                return result if isinstance(result, dict) else {"value": result}
            raise self._error(op, reply.get("error"))

    def _read_line(self, op: str, timeout_s: float) -> str | None:
        """The channel's next line (None at its end) within timeout_s of silence; with a cancel
        event, read in slices and raise CancelledError once it is set."""
        if self._cancel is None:
            return self._channel.read_line(timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            if self._cancel.is_set():
                raise CancelledError(f"device {self.device_name!r}: {op} cancelled", device=self.device_name)
            remaining = deadline - time.monotonic()
            try:
                return self._channel.read_line(max(0.0, min(CANCEL_POLL_S, remaining)))
            except DeviceError:  # silence for one slice; a timeout only when the whole wait is over
                if time.monotonic() >= deadline:
                    raise

    def _decode(self, line: str) -> dict[str, Any] | None:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def _error(self, op: str, error: Any) -> Exception:
        error = error if isinstance(error, dict) else {}
        error_type = str(error.get("type", "Unknown"))
        message = str(error.get("message", "no message"))
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        if error_type in AGENT_INPUT_ERROR_TYPES:
            # The device is fine; the model or its inputs are not (exit code 2).
            return ModelError(f"{message}", device=self.device_name, error_type=error_type, **data)
        if error_type == "Internal":
            return AgentInternalError(
                f"internal error in the edgekit agent during {op!r} on {self.device_name!r}: {message} "
                "(a bug in edgekit, not a device failure; the agent's stderr has the traceback)",
                device=self.device_name,
                error_type=error_type,
                **data,
            )
        return AgentError(
            f"device {self.device_name!r}: {op} failed: {error_type}: {message}",
            error_type=error_type,
            device=self.device_name,
            **data,
        )

    def hello(self) -> dict[str, Any]:
        started = time.monotonic()
        result = self.request("hello", timeout_s=30.0)
        if result.get("protocol") != PROTOCOL_VERSION:
            raise DeviceError(
                f"device {self.device_name!r}: agent speaks protocol {result.get('protocol')!r}, "
                f"this edgekit speaks {PROTOCOL_VERSION}",
                device=self.device_name,
            )
        result["handshake_ms"] = (time.monotonic() - started) * 1000.0
        return result

    def sensors(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A sensor snapshot; params may name power sensors to try (see docs/protocol.md)."""
        return self.request("sensors", params or {}, timeout_s=60.0)

    def bench(self, params: dict[str, Any], on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        # Progress events arrive every second while timing; only a model load is silent this long.
        return self.request("bench", params, timeout_s=900.0, on_progress=on_progress)

    def ab(self, params: dict[str, Any], on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        """The interleaved A/B run (docs/protocol.md, `ab`); a progress event comes per round pair."""
        return self.request("ab", params, timeout_s=900.0, on_progress=on_progress)

    def close(self) -> None:
        """Say bye and close the channel; with a request still waiting for its reply, abort."""
        if self.in_flight is not None:
            self.abort()
            return
        try:
            self.request("bye", timeout_s=5.0)
        except DeviceError:
            pass
        finally:
            self._channel.close()

    def abort(self) -> None:
        """Stop at once: a `cancel` request (the agent stops its bench child), then the channel
        closed (the agent's stdin ends: it exits, and so does any child it still has). Never
        raises a DeviceError: the agent may be gone already."""
        with contextlib.suppress(DeviceError):
            self._channel.send_line(json.dumps({"id": "cancel", "op": "cancel"}))
        self.in_flight = None
        self._channel.close()


@contextmanager
def agent_session(transport: Transport, cancel: threading.Event | None = None) -> Iterator[AgentClient]:
    """An agent started over the transport; agent and transport are closed on the way out, also
    when starting the agent fails (an SSH connection must not leak). Interrupted (Ctrl-C, the
    `cancel` event) or failing while a request runs, the agent is aborted (AgentClient.abort):
    no bench child is left on the device."""
    try:
        client = AgentClient(transport.start_agent(), transport.device_name, cancel)
        try:
            yield client
        except BaseException as exc:
            if not isinstance(exc, Exception) or isinstance(exc, CancelledError):
                client.abort()
            else:
                client.close()
            raise
        else:
            client.close()
    finally:
        transport.close()
