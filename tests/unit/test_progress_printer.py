"""ProgressPrinter in a log (stderr not a terminal): a line per phase, then at most one every
LOG_INTERVAL_S, and each phase's last count before the next phase starts."""

from __future__ import annotations

import pytest

from edgekit.cli.output import ProgressPrinter


def timed(done: int, total: int, process: int = 1) -> dict[str, object]:
    return {"phase": "timed", "done": done, "total": total, "process": process, "processes": 2}


def test_a_log_gets_each_phase_then_every_interval_then_the_final_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = [0.0]
    printer = ProgressPrinter(clock=lambda: now[0])
    events = [
        (0.0, {"phase": "connect", "device": "local"}),
        (0.1, {"phase": "load", "done": 0, "total": 1, "process": 1, "processes": 2}),
        (0.5, timed(0, 100)),
        (1.0, timed(500, 2000)),  # within the interval: held back
        (11.0, timed(5000, 9000)),  # the interval passed: printed
        (12.0, timed(5400, 9000)),  # held back, then flushed when the next phase starts
        (12.1, {"phase": "load", "done": 0, "total": 1, "process": 2, "processes": 2}),
        (12.2, timed(5400, 10800, process=2)),
        (13.0, timed(10800, 10800, process=2)),  # the final count: printed at once
        (13.1, {"phase": "done", "device": "local"}),
    ]
    for at, event in events:
        now[0] = at
        printer(event)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (process")[0] for line in lines] == [
        "local: starting agent", "load 0/1", "timed 0/100", "timed 5000/9000", "timed 5400/9000",
        "load 0/1", "timed 5400/10800", "timed 10800/10800", "local: done",
    ]  # fmt: skip
