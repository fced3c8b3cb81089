"""The long-lived agent's side of a bench: start the bench child, relay its progress, and turn
its death into a ChildCrashed failure.

The child is this same agent started again with --bench-child: from the zipapp
(``python3 agent-<sha256>.pyz``) it is ``sys.executable <the .pyz> --bench-child``; from a source
folder (``python3 -m edgekit_agent`` with agents/ on PYTHONPATH) it is
``sys.executable -m edgekit_agent --bench-child`` with that folder first on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

from edgekit_agent.failure import AgentFailure

STDERR_TAIL_LINES = 20


def agent_entry() -> str:
    """The sys.path entry this package was imported from: the .pyz file, or the folder holding
    edgekit_agent/ (agents/ in a source checkout)."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(package_dir)


def child_command(argv_tail: List[str]) -> Tuple[List[str], Optional[Dict[str, str]]]:
    """(argv, environment or None for this one) that starts the bench child."""
    entry = agent_entry()
    if os.path.isfile(entry):  # a zipapp: Python runs its __main__.py
        return [sys.executable, entry, "--bench-child", *argv_tail], None
    path = [entry] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    return [sys.executable, "-m", "edgekit_agent", "--bench-child", *argv_tail], env


def signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return "signal %d" % -returncode
    return "exit %d" % returncode


def run_bench_child(
    params: Dict[str, Any], argv_tail: List[str], relay: Callable[[Dict[str, Any]], None]
) -> Dict[str, Any]:
    """The child's result; its progress events go to relay; its error reply, or its death
    (ChildCrashed with the signal and the last stderr lines), raises AgentFailure."""
    argv, env = child_command(argv_tail)
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    stderr_tail: List[str] = []

    def drain_stderr(stream: IO[bytes]) -> None:
        for line in stream:
            text = line.decode("utf-8", "replace").rstrip("\n")
            sys.stderr.write(text + "\n")
            stderr_tail.append(text)
            del stderr_tail[:-STDERR_TAIL_LINES]

    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    threading.Thread(target=drain_stderr, args=(child.stderr,), daemon=True).start()
    try:
        child.stdin.write((json.dumps(params) + "\n").encode("utf-8"))
        child.stdin.close()
    except OSError:
        pass
    final: Optional[Dict[str, Any]] = None
    for line in child.stdout:
        try:
            message = json.loads(line.decode("utf-8"))
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("event") == "progress":
            relay(message)
        elif "ok" in message:
            final = message
    returncode = child.wait()
    if final is None:
        tail = " | ".join(stderr_tail[-5:])
        raise AgentFailure(
            "ChildCrashed",
            "the benchmark process died (%s)%s" % (signal_name(returncode), ": " + tail if tail else ""),
            returncode=returncode,
            signal=signal_name(returncode) if returncode < 0 else None,
        )
    if final.get("ok"):
        return final["result"]
    error = final.get("error") or {}
    raise AgentFailure(
        str(error.get("type", "Internal")), str(error.get("message", "")), **(error.get("data") or {})
    )
