"""Nothing lost when the team store goes away: a real PostgreSQL server shut down and restarted
while `edgekit fleet run` and `edgekit bench` write to it; the local spool and `edgekit store flush`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.data import demo_model_path
from edgekit.testing.models import make_mlp
from edgekit.testing.pg import PgServer, start_postgres
from tests.cli_run import run_cli
from tests.integration.test_cli import FAST

pytestmark = pytest.mark.integration


@pytest.fixture
def own_pg(pg_server: PgServer) -> Iterator[PgServer]:
    """A PostgreSQL server of this test alone (it is shut down mid-test; the session's is shared).
    Depends on pg_server only for its skip-or-fail check of the server binaries and psycopg."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def stored_run_ids(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return [str(row[0]) for row in conn.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]


def spooled(home: Path) -> list[Path]:
    return sorted((home / "spool").rglob("*.json")) if (home / "spool").exists() else []


def halt_after_first_result(server: PgServer, run_done: threading.Event) -> None:
    """Shut the server down as soon as a run is stored in it (or when the run is over)."""
    while not run_done.is_set():
        try:
            if stored_run_ids(server.url()):
                break
        except Exception:  # the run has not migrated the store yet
            pass
        time.sleep(0.05)
    server.halt()


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edgekit: warning:")]


def test_fleet_run_loses_nothing_when_postgresql_restarts_mid_run(own_pg: PgServer, tmp_path: Path) -> None:
    """The server is shut down right after the fleet's first result is stored and started again
    once a later result was spooled: the dropped connection is reconnected, the result written
    while the server was down is spooled and written after the next successful write, every
    result is stored exactly once, the spool ends empty and the exit code is the verdicts'."""
    url = own_pg.url()
    home = tmp_path / "home"
    mlp = make_mlp(tmp_path / "mlp.onnx")
    plan = tmp_path / "nightly.toml"
    plan.write_text(
        '[plan]\nruns = 20\nmin_seconds = 0\n[devices]\nnames = ["local"]\n'
        f'[[model]]\npath = "{demo_model_path()}"\nrecipes = ["as-is", "fp16"]\n'
        f'[[model]]\npath = "{mlp}"\nrecipes = ["as-is", "fp16"]\n'
    )
    outage: dict[str, object] = {}
    fleet_done = threading.Event()

    def shut_down_mid_run() -> None:
        halt_after_first_result(own_pg, fleet_done)
        outage["halted"] = True
        while not spooled(home) and not fleet_done.is_set():
            time.sleep(0.05)
        outage["spooled_during_outage"] = len(spooled(home))
        own_pg.resume()

    thread = threading.Thread(target=shut_down_mid_run, daemon=True)
    thread.start()
    proc = run_cli("fleet", "run", str(plan), "--store", url, "--json", home=home)
    fleet_done.set()
    thread.join(timeout=120)

    assert outage.get("halted") and outage.get("spooled_during_outage") == 1, (outage, proc.stderr)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    run_ids = report["devices"]["local"]["runs"]
    assert len(run_ids) == 4 and report["devices"]["local"]["errors"] == []
    assert stored_run_ids(url) == sorted(run_ids)  # each once
    assert spooled(home) == []
    spool_warnings = [line for line in warnings_of(proc.stderr) if "spooled to" in line]
    assert len(spool_warnings) == 1 and "Traceback" not in proc.stderr
    history = json.loads(run_cli("history", "--store", url, "--json", home=home).stdout)
    assert {r["fleet"]["plan_run_id"] for r in history} == {report["plan_run_id"]}
    again = run_cli("fleet", "run", str(plan), "--store", url, "--json", home=home)
    assert json.loads(again.stdout)["resumed"] is False  # the run's end was stored too


def test_bench_while_postgresql_is_down_is_spooled_then_flushed_exactly_once(
    own_pg: PgServer, tmp_path: Path
) -> None:
    url = own_pg.url()
    home = tmp_path / "home"
    own_pg.halt()

    bench = run_cli("bench", str(demo_model_path()), *FAST, "--store", url, "--json", home=home)
    assert bench.returncode in (0, 1), bench.stderr  # the verdict's code: the result is not lost
    result = json.loads(bench.stdout)
    lines = [line for line in bench.stderr.splitlines() if line.startswith("edgekit:")]
    assert len(lines) == 1 and lines[0].startswith("edgekit: warning: results store"), bench.stderr
    assert f"run {result['run_id']} spooled to {home / 'spool'}" in lines[0]
    assert "cannot connect" in lines[0] and "edgekit store flush" in lines[0]
    [entry] = spooled(home)
    assert json.loads(entry.read_text())["result"] == result
    kept = entry.read_text()

    down = run_cli("store", "flush", "--store", url, home=home)
    assert down.returncode == 2 and "cannot connect" in down.stderr  # still down: nothing lost
    assert spooled(home) == [entry]

    own_pg.resume()
    flush = run_cli("store", "flush", "--store", url, "--json", home=home)
    assert flush.returncode == 0, flush.stderr
    assert json.loads(flush.stdout)["written"] == 1
    assert stored_run_ids(url) == [result["run_id"]]
    assert spooled(home) == []
    stored = json.loads(run_cli("history", "--store", url, "--json", home=home).stdout)
    assert stored == [result]

    twice = run_cli("store", "flush", "--store", url, "--json", home=home)
    assert twice.returncode == 0 and json.loads(twice.stdout)["written"] == 0
    assert stored_run_ids(url) == [result["run_id"]]

    entry.write_text(kept)  # as if a flush's commit had not been acknowledged: stored and spooled
    again = run_cli("store", "flush", "--store", url, "--json", home=home)
    assert again.returncode == 0 and json.loads(again.stdout)["already_stored"] == 1
    assert stored_run_ids(url) == [result["run_id"]]
    assert spooled(home) == []


def test_a_store_reconnects_after_a_server_restart_without_spooling(own_pg: PgServer) -> None:
    """A restart between two writes (every open connection is terminated): the next write and read
    reconnect; nothing is spooled, nothing warned."""
    import warnings

    from edgekit.store.open import open_store
    from tests.results import make_result

    store = open_store(own_pg.url(), spool=True)
    first = store.add_run(make_result())
    own_pg.halt()
    own_pg.resume()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a spool warning would fail the test
        second = store.add_run(make_result({"latency_ms.p50": 2.0}))
        own_pg.halt()
        own_pg.resume()
        assert sorted(r.run_id for r in store.runs()) == sorted([first, second])
    store.close()
    assert stored_run_ids(own_pg.url()) == sorted([first, second])


def test_a_spool_file_that_is_not_utf8_is_kept_with_a_warning_like_any_file_that_is_no_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Undecodable bytes in the spool are what a non-JSON file is: a warning, the file kept, and
    `store flush` exit 2; a writer (bench) still stores its result (exit 0)."""
    from edgekit.store.open import open_store, spool_of

    home, store = tmp_path / "home", tmp_path / "results.sqlite"
    open_store(store).close()
    monkeypatch.setenv("EDGEKIT_HOME", str(home))
    junk = spool_of(store).directory / "x.json"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"\xff")
    flush = run_cli("store", "flush", "--store", str(store), home=home)
    assert flush.returncode == 2, flush.stderr
    assert "Traceback" not in flush.stderr
    assert warnings_of(flush.stderr) == [
        f"edgekit: warning: {junk}: not UTF-8 text (byte 0); spooled entry left in {junk}"
    ]
    assert f"1 left in {junk.parent}" in flush.stdout
    bench = run_cli("bench", str(demo_model_path()), *FAST, "--store", str(store), "--json", home=home)
    assert bench.returncode == 0, bench.stderr
    assert len(warnings_of(bench.stderr)) == 1 and "not UTF-8" in bench.stderr  # once, not per write
    assert json.loads(bench.stdout)["run_id"]
    assert junk.read_bytes() == b"\xff"


def test_store_flush_against_a_refusing_server_is_one_error_line_even_with_json(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """As every command with --json: on an error nothing on stdout, one error line on stderr."""
    from tests.integration.test_cli import assert_one_line_error

    url = pg_server.url("edgekit_no_such_database")
    for args in ([], ["--json"]):
        proc = run_cli("store", "flush", "--store", url, *args, home=tmp_path)
        assert_one_line_error(proc, 2, "edgekit_no_such_database")


def test_fleet_that_ends_while_postgresql_is_down_says_what_was_spooled(
    own_pg: PgServer, tmp_path: Path
) -> None:
    """The server goes away after the first result and stays away to the end of the run: the
    summary says how many writes wait in the spool (not just "stored in URL"), and a flush after
    the restart stores every result once."""
    url = own_pg.url()
    home = tmp_path / "home"
    plan = tmp_path / "nightly.toml"
    plan.write_text(
        '[plan]\nruns = 20\nmin_seconds = 0\n[devices]\nnames = ["local"]\n'
        f'[[model]]\npath = "{demo_model_path()}"\nrecipes = ["as-is", "fp16"]\n'
    )
    fleet_done = threading.Event()

    thread = threading.Thread(target=halt_after_first_result, args=(own_pg, fleet_done), daemon=True)
    thread.start()
    proc = run_cli("fleet", "run", str(plan), "--store", url, "--json", home=home)
    fleet_done.set()
    thread.join(timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    run_ids = json.loads(proc.stdout)["devices"]["local"]["runs"]
    assert len(run_ids) == 2
    waiting = len(spooled(home))
    assert waiting == 2  # the second result and the run's end
    summary = [line for line in proc.stderr.splitlines() if line.startswith("plan ")]
    assert len(summary) == 1 and f"{waiting} write(s) spooled until it answers" in summary[0], proc.stderr
    own_pg.resume()
    flushed = run_cli("store", "flush", "--store", url, home=home)
    assert flushed.returncode == 0, flushed.stderr
    assert stored_run_ids(url) == sorted(run_ids) and spooled(home) == []
