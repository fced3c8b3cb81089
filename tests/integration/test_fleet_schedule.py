"""Fleet runs from cron: an overlap lock, and resuming an interrupted run without redoing cells."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.core.runlock import plan_lock_path, run_lock
from edgekit.data import demo_model_path
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration
RECIPES = '["as-is", "fp16", "int8-dynamic"]'


def write_plan(tmp_path: Path, min_seconds: float) -> Path:
    plan = tmp_path / "nightly.toml"
    plan.write_text(
        f'[plan]\nruns = 20\nmin_seconds = {min_seconds}\n[devices]\nnames = ["local"]\n'
        f'[[model]]\npath = "{demo_model_path()}"\nrecipes = {RECIPES}\n'
    )
    return plan


def cells_done(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM plan_cells").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def test_a_killed_run_resumes_without_redoing_cells(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, min_seconds=1.5)
    store = tmp_path / "results.sqlite"
    env = {**os.environ, "EDGEKIT_HOME": str(tmp_path)}
    first = subprocess.Popen(
        [sys.executable, "-m", "edgekit.cli.main", "fleet", "run", str(plan), "--store", str(store)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while cells_done(store) < 1 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # cron's host rebooted mid-plan
    first.wait()
    assert cells_done(store) == 1

    proc = run_cli("fleet", "run", str(plan), "--store", str(store), "--json", home=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["resumed"] is True and report["skipped_cells"] == 1
    assert len(report["devices"]["local"]["runs"]) == 2  # only the two cells left
    assert "resumed plan run" in proc.stderr
    with sqlite3.connect(store) as conn:
        recipes = sorted(
            json.loads(r[0])["fleet"]["recipe"] for r in conn.execute("SELECT result_json FROM runs")
        )
    assert recipes == ["as-is", "fp16", "int8-dynamic"]  # each cell exactly once

    again = run_cli("fleet", "run", str(plan), "--store", str(store), "--json", home=tmp_path)
    assert json.loads(again.stdout)["resumed"] is False  # the last run finished: a new one starts


def test_a_second_run_of_the_same_plan_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = write_plan(tmp_path, min_seconds=0)
    monkeypatch.setenv("EDGEKIT_HOME", str(tmp_path))
    with run_lock(plan_lock_path(plan), "plan 'nightly'"):
        proc = run_cli("fleet", "run", str(plan), home=tmp_path)
    assert proc.returncode == 2
    assert "plan 'nightly' is already running ({\"pid\": " in proc.stderr
    assert f'"pid": {os.getpid()}' in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("fleet", "run", str(plan), "--json", home=tmp_path)  # the lock went with its holder
    assert proc.returncode in (0, 1), proc.stderr
