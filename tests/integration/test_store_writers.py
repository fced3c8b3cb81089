"""Concurrent writers of one SQLite store, as real processes: a fleet run and users' benches writing
the same `results.sqlite` at once never lose a result (WAL, busy timeout, BEGIN IMMEDIATE)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
RESULTS_EACH = 40

# One writer process: waits for the start file, then stores RESULTS_EACH real results (the first
# schema-1 edgekit's result, tests/data/results_v1) one transaction each; writer 0 is a fleet run
# (each result marks a plan cell done in the same transaction), the others are benches.
WRITER = """
import sys, time
from pathlib import Path
from edgekit.store.open import open_store
from tests.results import make_result

store_path, start, index, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
while not start.exists():
    time.sleep(0.005)
store = open_store(store_path)
plan_run_id = store.start_plan_run(f"plan-{index}")[0] if index == 0 else None
for n in range(count):
    result = make_result({"device.name": f"writer{index}", "latency_ms.p50": 1.0 + n})
    cell = (plan_run_id, f"writer{index}", str(n)) if plan_run_id else None
    store.add_run(result, plan_cell=cell)
store.close()
"""


def test_processes_writing_one_sqlite_store_at_once_lose_nothing(tmp_path: Path) -> None:
    store = tmp_path / "results.sqlite"  # not created yet: the writers also race to create it
    start = tmp_path / "start"
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store), str(start), str(index), str(RESULTS_EACH)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(WRITERS)
    ]
    time.sleep(1.0)  # every writer is waiting at the start line
    start.touch()
    outputs = [writer.communicate(timeout=300) for writer in writers]
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
        assert "warning" not in stderr  # nothing spooled, nothing retried into the spool

    conn = sqlite3.connect(store)
    try:
        per_writer = dict(conn.execute("SELECT device, COUNT(DISTINCT run_id) FROM runs GROUP BY device"))
        total = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        cells = conn.execute("SELECT COUNT(*) FROM plan_cells").fetchone()[0]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert per_writer == {f"writer{index}": RESULTS_EACH for index in range(WRITERS)}
    assert total == WRITERS * RESULTS_EACH
    assert cells == RESULTS_EACH
    assert journal == "wal"
