"""The bench child's side: read the bench params line from stdin, run the bench (or, with
"mode": "ab", the interleaved A/B run of edgekit_agent.ab), write progress
events and one final {"ok": ...} line to stdout. Started by child_process.py as this same agent
with --bench-child, so its peak RSS is the model's own."""

from __future__ import annotations

import json
import sys
import traceback

from edgekit_agent.bench import run_bench
from edgekit_agent.emitter import Emitter
from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.host import Host


def bench_child_main(host: Host) -> int:
    emit = Emitter(sys.stdout)
    try:
        params = json.loads(sys.stdin.readline())
        if params.get("mode") == "ab":
            from edgekit_agent.ab import run_ab

            result = run_ab(params, host, emit)
        else:
            result = run_bench(params, host, emit)
        emit({"ok": True, "result": result})
    except AgentFailure as failure:
        emit({"ok": False, "error": failure.to_reply()})
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit({"ok": False, "error": {"type": "Internal", "message": first_line(exc), "data": {}}})
    return 0
