"""The long-lived agent: JSON-lines requests on stdin, one reply per request on stdout
(protocol 1, docs/protocol.md), ops hello / sensors / bench / ab / cancel / bye.

A reader thread takes the lines off stdin while a request runs, so that `cancel` (and the end of
stdin: the host is gone) stops a bench child at once instead of after the bench."""

from __future__ import annotations

import json
import os
import queue
import socket
import sys
import threading
import time
import traceback
from typing import IO, Any, Dict, List, Optional, Tuple

from edgekit_agent import AGENT_VERSION, PROTOCOL_VERSION
from edgekit_agent.child_process import RunningChildren, run_bench_child, run_bench_processes
from edgekit_agent.device_lock import DeviceLock
from edgekit_agent.emitter import Emitter
from edgekit_agent.facts.device import device_facts
from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.host import Host
from edgekit_agent.params import check_params
from edgekit_agent.runtimes.inventory import accelerators
from edgekit_agent.sensors.power import check_power_sensors, discover_power_sensors
from edgekit_agent.sensors.snapshot import sensors_snapshot

MAX_LINE_BYTES = 1 << 20


class Agent:
    def __init__(
        self, host: Host, argv_tail: List[str], out: IO[str], workdir: str, lock_file: Optional[str] = None
    ) -> None:
        self.host = host
        self.argv_tail = argv_tail
        self.emit = Emitter(out)
        self.workdir = workdir
        self.lock_file = lock_file or os.path.join(workdir, "bench.lock")
        self.running = RunningChildren()  # the bench children of the last request read (cancel stops them)
        self.handling = self.running  # the bench children of the request being handled

    def reply_ok(self, request_id: Any, result: Any) -> None:
        self.emit({"id": request_id, "ok": True, "result": result})

    def reply_error(self, request_id: Any, failure: AgentFailure) -> None:
        self.emit({"id": request_id, "ok": False, "error": failure.to_reply()})

    def handle_line(self, raw: bytes) -> bool:
        """Handle one request line; False when the agent should stop."""
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.reply_error(None, AgentFailure("BadRequest", "not a JSON line: %s" % first_line(exc)))
            return True
        except RecursionError:  # json's C decoder recurses once per nesting level
            self.reply_error(None, AgentFailure("BadRequest", "not a JSON line: nested too deeply"))
            return True
        if not isinstance(message, dict):
            self.reply_error(None, AgentFailure("BadRequest", "a request must be a JSON object"))
            return True
        request_id = message.get("id")
        op = message.get("op")
        params = message.get("params", {})
        if request_id is None or not isinstance(op, str):
            self.reply_error(request_id, AgentFailure("BadRequest", "a request needs an id and an op"))
            return True
        if not isinstance(params, dict):
            self.reply_error(request_id, AgentFailure("BadRequest", "params must be an object"))
            return True
        if op == "cancel":  # normally taken by the reader thread (cancel_if_asked) while a bench runs
            self.reply_ok(request_id, {"cancelled": False})
            return True
        handler = {
            "hello": self.op_hello,
            "sensors": self.op_sensors,
            "bench": self.op_bench,
            "ab": self.op_ab,
        }.get(op)
        if op == "bye":
            self.reply_ok(request_id, {"bye": True})
            return False
        if handler is None:
            self.reply_error(
                request_id,
                AgentFailure(
                    "UnknownOp", "unknown op %r (hello, sensors, bench, ab, cancel, bye)" % op, op=op
                ),
            )
            return True
        try:
            check_params(params)
            self.reply_ok(request_id, handler(request_id, params))
        except AgentFailure as failure:
            self.reply_error(request_id, failure)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.reply_error(
                request_id, AgentFailure("Internal", "%s: %s" % (exc.__class__.__name__, first_line(exc)))
            )
        return True

    def op_hello(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "agent_version": AGENT_VERSION,
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "facts": device_facts(self.host, self.workdir),
        }

    def op_sensors(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        snapshot = sensors_snapshot(self.host)
        specs = params.get("power_sensors")
        if isinstance(specs, list):  # the profile's sensors, each tried once (devices doctor)
            options = params.get("sensor_options") or {}
            snapshot["power_sensors"] = check_power_sensors(self.host, [str(s) for s in specs], options)
        if params.get("discover_power"):
            snapshot["power_discovered"] = discover_power_sensors(self.host)
        if params.get("accelerators"):  # devices doctor: providers and delegates, with install lines
            snapshot["accelerators"] = accelerators()
        return snapshot

    def op_bench(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        return self._in_child(request_id, dict(params, mode="bench"), str(params.get("artifact", "")))

    def op_ab(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        """The interleaved A/B run (edgekit_agent.ab) in one bench child, under the device lock."""
        names = [str((params.get(side) or {}).get("artifact", "")) for side in ("baseline", "candidate")]
        return self._in_child(request_id, dict(params, mode="ab"), " vs ".join(names))

    def _in_child(self, request_id: Any, params: Dict[str, Any], artifact: str) -> Dict[str, Any]:
        """Run the bench child with params under the device lock, relaying its progress."""
        lock = DeviceLock(self.lock_file)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "artifact": " vs ".join(os.path.basename(part) for part in artifact.split(" vs ")),
        }

        def waiting(held_by: str) -> None:
            self.emit(
                {
                    "id": request_id,
                    "event": "progress",
                    "phase": "lock",
                    "message": "waiting for the device lock held by %s" % held_by,
                }
            )

        def relay(event: Dict[str, Any]) -> None:
            self.emit(dict(event, id=request_id))

        running = self.handling
        running.check()
        lock.acquire(float(params.get("lock_timeout_s", 600.0)), holder, waiting, running.check)
        try:
            if params.get("mode") == "ab":  # one child holds both models; its rounds interleave
                return run_bench_child(params, self.argv_tail, relay, running)
            return run_bench_processes(params, self.argv_tail, relay, running)
        finally:
            lock.release()

    def cancel_if_asked(self, raw: bytes) -> bool:
        """True when raw is a `cancel` request: the running bench children are stopped (that
        bench replies Cancelled) and the cancel gets its own reply here, out of turn."""
        if b'"cancel"' not in raw:
            return False
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return False
        if not isinstance(message, dict) or message.get("op") != "cancel" or message.get("id") is None:
            return False
        running = self.running
        busy = bool(running.children)
        running.cancel()
        self.reply_ok(message.get("id"), {"cancelled": busy})
        return True

    def read_requests(
        self, stream: IO[bytes], lines: "queue.Queue[Optional[Tuple[bytes, RunningChildren]]]"
    ) -> None:
        """The reader thread: request lines into `lines` (None at the end of stdin, after stopping
        any running bench child: nobody is left to read its reply)."""
        try:
            while True:
                raw = stream.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    while True:  # drain the rest of the oversized line
                        rest = stream.readline(MAX_LINE_BYTES)
                        if not rest or rest.endswith(b"\n"):
                            break
                    self.reply_error(
                        None,
                        AgentFailure("LineTooLong", "request line longer than %d bytes" % MAX_LINE_BYTES),
                    )
                    continue
                if raw.strip() and not self.cancel_if_asked(raw):
                    # a cancel from now on is meant for this request (it was sent after it)
                    self.running = RunningChildren()
                    lines.put((raw, self.running))
        except (OSError, ValueError):
            return
        finally:
            self.running.cancel()
            lines.put(None)

    def serve(self, stream: IO[bytes]) -> int:
        lines: "queue.Queue[Optional[Tuple[bytes, RunningChildren]]]" = queue.Queue()
        threading.Thread(target=self.read_requests, args=(stream, lines), daemon=True).start()
        while True:
            item = lines.get()
            if item is None:
                return 0
            raw, self.handling = item
            if not self.handle_line(raw):
                return 0
