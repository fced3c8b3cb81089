"""The agent's whole-bench progress counts over several bench processes (child_process.whole_bench_counts)."""

from __future__ import annotations

from edgekit_agent.child_process import whole_bench_counts


def _timed(process: int, done: int, total: int) -> dict[str, object]:
    return {"phase": "timed", "process": process, "processes": 2, "done": done, "total": total}


def test_counts_over_two_processes_never_pass_the_total_nor_drop_at_the_second_process() -> None:
    """Process 1 times 18446 inferences (its estimate grows from its share of runs, 10, as
    min_seconds keeps the window going); process 2 starts with the same share estimate, but is
    expected to time about as many as process 1: the total does not fall to 18456 (as if the
    bench were nearly done) and ends equal to done."""
    first = [_timed(1, 0, 10), _timed(1, 9000, 18000), _timed(1, 18446, 18446)]
    finished = [{"latencies_ns": [1] * 18446}]
    second = [_timed(2, 0, 10), _timed(2, 9000, 18100), _timed(2, 18054, 18054)]
    seen = [whole_bench_counts(e, []) for e in first] + [whole_bench_counts(e, finished) for e in second]
    counts = [(int(e["done"]), int(e["total"])) for e in seen]  # type: ignore[call-overload]
    assert all(done <= total for done, total in counts)
    assert counts[3] == (18446, 36892)  # the second process's first event
    assert counts[4] == (27446, 36892)
    assert counts[-1] == (36500, 36500)
    dones = [done for done, _ in counts]
    assert dones == sorted(dones)
