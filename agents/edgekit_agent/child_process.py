"""The long-lived agent's side of a bench: start the bench child, relay its progress, and turn
its death into a ChildCrashed failure.

The child is this same agent started again with --bench-child: from the zipapp
(``python3 agent-<sha256>.pyz``) it is ``sys.executable <the .pyz> --bench-child``; from a source
folder (``python3 -m edgekit_agent`` with agents/ on PYTHONPATH) it is
``sys.executable -m edgekit_agent --bench-child`` with that folder first on PYTHONPATH.

A bench may ask for several fresh children (params ``processes``, as pyperf spreads a benchmark
over worker processes): run_bench_processes starts them one after another, gives each its share
of ``runs``/``min_seconds``/``max_seconds``, and merges their replies (merge_process_results).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any, Callable, Dict, List, Optional, Set, Tuple

from edgekit_agent.failure import AgentFailure

STDERR_TAIL_LINES = 20
STOP_GRACE_S = 2.0  # a stopped child gets SIGTERM, then SIGKILL after this long


class RunningChildren:
    """The bench children of one request, so that a `cancel` request or the end of the agent's
    stdin (the host is gone) can stop them from another thread. Once cancelled, no new child
    starts and the request ends with a Cancelled failure."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.children: Set["subprocess.Popen[bytes]"] = set()
        self.cancelled = False

    def add(self, child: "subprocess.Popen[bytes]") -> None:
        with self.lock:
            self.children.add(child)
            cancelled = self.cancelled
        if cancelled:
            stop_child(child)

    def remove(self, child: "subprocess.Popen[bytes]") -> None:
        with self.lock:
            self.children.discard(child)

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            children = list(self.children)
        for child in children:
            stop_child(child)

    def check(self) -> None:
        """Raise AgentFailure("Cancelled") when cancel() was called."""
        if self.cancelled:
            raise AgentFailure("Cancelled", "the bench was cancelled (cancel request or the host went away)")


def stop_child(child: "subprocess.Popen[bytes]") -> None:
    """SIGTERM the child, SIGKILL it when it is still there STOP_GRACE_S later; never raises."""
    if child.poll() is not None:
        return
    try:
        child.terminate()
        child.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            child.kill()
    except OSError:
        pass


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
    params: Dict[str, Any],
    argv_tail: List[str],
    relay: Callable[[Dict[str, Any]], None],
    running: Optional[RunningChildren] = None,
) -> Dict[str, Any]:
    """The child's result; its progress events go to relay; its error reply, or its death
    (ChildCrashed with the signal and the last stderr lines), raises AgentFailure. The child's
    stdin stays open while it runs: it exits when that closes (this agent died). `running`
    lets another thread stop it (Cancelled); any exception here (KeyboardInterrupt) stops it too."""
    running = running or RunningChildren()
    running.check()
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
    running.add(child)
    try:
        final = _talk_to_child(child, params, relay, drain_stderr)
        returncode = child.wait()
    finally:
        stop_child(child)
        running.remove(child)
        if child.stdin is not None:
            with contextlib.suppress(OSError):
                child.stdin.close()
    running.check()
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


def _talk_to_child(
    child: "subprocess.Popen[bytes]",
    params: Dict[str, Any],
    relay: Callable[[Dict[str, Any]], None],
    drain_stderr: Callable[[IO[bytes]], None],
) -> Optional[Dict[str, Any]]:
    """Send the params line (stdin stays open), relay progress; the final {"ok": ...} line or None."""
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    threading.Thread(target=drain_stderr, args=(child.stderr,), daemon=True).start()
    try:
        child.stdin.write((json.dumps(params) + "\n").encode("utf-8"))
        child.stdin.flush()
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
    return final


def even_share(total: int, parts: int, index: int) -> int:
    """Part `index` (0-based) of `total` split into `parts` integers that differ by at most one
    and add up to `total` (the first total % parts parts get one more)."""
    return total // parts + (1 if index < total % parts else 0)


def process_params(params: Dict[str, Any], process: int, processes: int) -> Dict[str, Any]:
    """The bench params of child number `process` (0-based) of `processes`: its share of runs
    (even_share: the shares add up to `runs`), min_seconds and max_seconds. Only the first child
    waits for the board to cool and measures energy (the later ones follow it at once, with no
    idle baseline)."""
    child = dict(params)
    child["process"] = process
    child["runs"] = even_share(int(params.get("runs", 100)), processes, process)
    child["min_seconds"] = float(params.get("min_seconds", 2.0)) / processes
    child["max_seconds"] = float(params.get("max_seconds", 600.0)) / processes
    if process > 0:
        child["power_sensors"] = []
        child["max_start_temp_c"] = None
    return child


def merge_process_results(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One bench result from the children's, in order: latencies_ns and rounds concatenated (in
    time order), the window spanning them (started_unix of the first, duration_s the sum of the
    timed windows, capped when any was); cold start, memory, energy, thermal wait, runtime, outputs
    and sensors_start from the first child, sensors_end from the last."""
    first, last = results[0], results[-1]
    merged = dict(first)
    merged["latencies_ns"] = [ns for result in results for ns in result["latencies_ns"]]
    merged["rounds"] = [r for result in results for r in (result.get("rounds") or [])]
    merged["processes"] = len(results)
    merged["sensors_end"] = last.get("sensors_end")
    windows = [result.get("window") or {} for result in results]
    merged["window"] = {
        "started_unix": windows[0].get("started_unix"),
        "duration_s": sum(float(w.get("duration_s") or 0.0) for w in windows),
        "capped_by_max_seconds": any(bool(w.get("capped_by_max_seconds")) for w in windows),
    }
    return merged


def whole_bench_counts(event: Dict[str, Any], finished: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A `timed` progress event of child number event["process"] (1-based) with done and total
    over the whole bench: the inferences of the finished children plus this one's, and for the
    children still to come as many as this one expects (their shares are equal). Until a child has
    finished its window, it is expected to time at least as many as the finished children did on
    average (its own first estimate is only its share of `runs`: the total would drop at each new
    child). The last child's last event has done == total; done never passes total."""
    if event.get("phase") != "timed" or event.get("done") is None or event.get("total") is None:
        return event
    before = sum(len(result.get("latencies_ns") or []) for result in finished)
    later = int(event["processes"]) - int(event["process"])
    done, total = int(event["done"]), int(event["total"])
    if finished and done < total:
        total = max(total, before // len(finished))
    return dict(event, done=before + done, total=before + total * (later + 1))


def run_bench_processes(
    params: Dict[str, Any],
    argv_tail: List[str],
    relay: Callable[[Dict[str, Any]], None],
    running: Optional[RunningChildren] = None,
) -> Dict[str, Any]:
    """The bench over params["processes"] (default 1) fresh children, one after another; progress
    events carry "process" (1-based) and "processes". The first failure raises (AgentFailure)."""
    processes = int(params.get("processes", 1))
    if processes < 1:
        raise AgentFailure("BadRequest", "bench params.processes must be >= 1, got %d" % processes)
    results: List[Dict[str, Any]] = []
    for process in range(processes):

        def tagged(event: Dict[str, Any], number: int = process + 1) -> None:
            relay(whole_bench_counts(dict(event, process=number, processes=processes), results))

        results.append(
            run_bench_child(process_params(params, process, processes), argv_tail, tagged, running)
        )
    return merge_process_results(results)
