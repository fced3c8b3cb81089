from __future__ import annotations

import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from edgekit.errors import StoreError
from edgekit.store import MIGRATIONS, SCHEMA_VERSION, open_store


def fake_result(
    device: str = "local", model: str = "mlp", verdict: str = "pass", p50: float = 1.0
) -> dict[str, Any]:
    return {
        "schema": 1,
        "device": {"name": device},
        "model": {"name": model},
        "artifact": {"sha256": "ab" * 32},
        "budget": {"verdict": verdict, "checks": []},
        "latency_ms": {"p50": p50},
        "fingerprint": {"hash": "f" * 16, "threads": 1},
    }


def test_round_trip_whole_result_newest_first(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    first = store.add_run(fake_result(p50=1.0))
    second = store.add_run(fake_result(p50=2.0, model="other"))
    runs = store.runs()
    assert [r.run_id for r in runs] == [second, first]
    assert runs[1].result["latency_ms"]["p50"] == 1.0
    assert store.get(first).result == {
        **fake_result(p50=1.0),
        "run_id": first,
        "created_at": runs[1].created_at,
    }
    assert [r.run_id for r in store.runs(model="mlp")] == [first]
    assert store.runs(device="nowhere") == []
    store.close()


def test_schema_is_versioned_and_reopen_does_not_remigrate(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    open_store(path).close()
    store = open_store(path)
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    rows = sqlite3.connect(path).execute("SELECT version FROM schema_migrations").fetchall()
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this edgekit"):
        open_store(path)


def test_failed_insert_leaves_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    broken = fake_result()
    del broken["artifact"]
    with pytest.raises(KeyError):
        store.add_run(broken)
    assert store.runs() == []
    store.add_run(fake_result())
    assert len(store.runs()) == 1


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        open_store(path)


def test_result_json_is_stored_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    store = open_store(path)
    run_id = store.add_run(fake_result())
    raw = (
        sqlite3.connect(path).execute("SELECT result_json FROM runs WHERE run_id=?", (run_id,)).fetchone()[0]
    )
    assert json.loads(raw)["artifact"]["sha256"] == "ab" * 32


def test_many_openers_of_a_new_store_at_once_all_store(tmp_path: Path) -> None:
    """Fleet threads and parallel processes open the same fresh file at the same moment."""
    path = tmp_path / "results.sqlite"
    start = threading.Barrier(8)

    def open_and_add(index: int) -> str:
        start.wait()
        store = open_store(path)
        try:
            return store.add_run(fake_result(device=f"d{index}"))
        finally:
            store.close()

    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(open_and_add, range(8)))
    store = open_store(path)
    assert sorted(r.run_id for r in store.runs()) == sorted(run_ids)
    assert store.schema_version() == SCHEMA_VERSION


def test_one_store_shared_by_threads(tmp_path: Path) -> None:
    store = open_store(tmp_path / "results.sqlite")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.add_run(fake_result(device=f"d{i}")), range(40)))
    assert len(store.runs(limit=100)) == 40
