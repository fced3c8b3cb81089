"""The bench child's side: read the bench params line from stdin, run the bench (or, with
"mode": "ab", the interleaved A/B run of edgekit_agent.ab), write progress
events and one final {"ok": ...} line to stdout. Started by child_process.py as this same agent
with --bench-child, so its peak RSS is the model's own.

The child ignores SIGINT (a Ctrl-C on the terminal of a `local` run reaches the whole process
group; the agent decides) and exits at once when its stdin closes: the agent keeps that pipe
open while the child runs, so a child never outlives its agent."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from typing import Optional

from edgekit_agent.bench import run_bench
from edgekit_agent.emitter import Emitter
from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.host import Host


def bench_child_main(host: Host, workdir: Optional[str] = None) -> int:
    """workdir: the agent's (--workdir, passed on by the agent), for the TensorRT engine cache."""
    emit = Emitter(sys.stdout)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        params = json.loads(sys.stdin.readline())
        threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
        if params.get("mode") == "ab":
            from edgekit_agent.ab import run_ab

            result = run_ab(params, host, emit, workdir)
        else:
            result = run_bench(params, host, emit, workdir)
        emit({"ok": True, "result": result})
    except AgentFailure as failure:
        emit({"ok": False, "error": failure.to_reply()})
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit({"ok": False, "error": {"type": "Internal", "message": first_line(exc), "data": {}}})
    return 0


def exit_when_stdin_closes() -> None:
    """Block on stdin; when it closes (the agent died or stopped this bench), exit at once."""
    try:
        while sys.stdin.readline():
            pass
    except (OSError, ValueError):
        pass
    os._exit(130)
