"""The results store, each test on both back ends: a SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgekit.core.errors import StoreError, UsageError
from edgekit.core.result import RESULT_SCHEMA, Result
from edgekit.store.base import MIGRATIONS, SCHEMA_VERSION, SQLITE, Dialect
from edgekit.store.location import mask_password
from edgekit.store.open import open_store
from edgekit.store.references import load_reference
from edgekit.testing.pg import PgServer
from edgekit.testing.ssh import free_port
from tests.results import V1_DIR, make_result


@dataclass
class Backend:
    """A fresh store location, and raw SQL on it that bypasses edgekit (to set up or inspect)."""

    name: str
    location: str
    dialect: Dialect

    def sql(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.name == "sqlite":
            conn = sqlite3.connect(self.location)
            try:
                rows = conn.execute(query, tuple(args)).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.location, autocommit=True) as conn:
            cursor = conn.execute(self.dialect.sql(query), tuple(args))
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "results.sqlite"), SQLITE)
    from edgekit.store.postgres import POSTGRES

    return Backend("postgresql", request.getfixturevalue("pg_url"), POSTGRES)


def fake_result(device: str = "local", model: str = "mlp", verdict: str = "pass", p50: float = 1.0) -> Result:
    return make_result(
        {"device.name": device, "model.name": model, "budget.verdict": verdict, "latency_ms.p50": p50}
    )


def test_round_trip_whole_result_newest_first(backend: Backend) -> None:
    store = open_store(backend.location)
    first = store.add_run(fake_result(p50=1.0))
    second = store.add_run(fake_result(p50=2.0, model="other"))
    runs = store.runs()
    assert [r.run_id for r in runs] == [second, first]
    assert runs[1].result.latency_ms.p50 == 1.0
    assert runs[1].created_at == runs[1].result.created_at
    assert store.get(first).result.to_dict() == {**fake_result(p50=1.0).to_dict(), "run_id": first}
    assert [r.run_id for r in store.runs(model="mlp")] == [first]
    assert [r.run_id for r in store.runs(model="mlp", device="local")] == [first]
    assert store.runs(device="nowhere") == []
    assert [r.run_id for r in store.runs(limit=1)] == [second]
    assert store.get("no-such-run") is None
    store.close()


def test_result_comes_back_exactly(backend: Backend) -> None:
    """Every JSON value a result can hold survives the trip: floats to the last bit, big integers,
    unicode, nulls, nesting, key order irrelevant."""
    data = fake_result(p50=0.1 + 0.2).to_dict()
    data["extra"] = {
        "tiny": 5e-324,
        "big": 2**63 + 1,
        "text": "µs ≤ 1 — 模型 \u0000 'quoted' \"double\" ?%s",
        "none": None,
        "nested": [[1, 2.5, True, False], {"z": 1, "a": [None]}],
    }
    result = Result.model_validate(data)
    store = open_store(backend.location)
    run_id = store.add_run(result)
    store.close()
    again = open_store(backend.location)
    assert again.get(run_id).result.to_dict() == {**data, "run_id": run_id}
    assert again.get(run_id).result.extra == data["extra"]  # type: ignore[attr-defined]
    again.close()


def test_get_by_prefix_needs_a_unique_prefix(backend: Backend) -> None:
    store = open_store(backend.location)
    first = store.add_run(fake_result().model_copy(update={"run_id": "abc123first"}))
    store.add_run(fake_result().model_copy(update={"run_id": "abc123second"}))
    assert store.get_by_prefix("abc123f").run_id == first
    assert store.get_by_prefix("abc123") is None  # two runs match
    assert store.get_by_prefix("zzz") is None
    store.close()


def test_references_take_unique_prefixes_of_four_characters(backend: Backend) -> None:
    store = open_store(backend.location)
    first = store.add_run(fake_result().model_copy(update={"run_id": "abc123first"}))
    store.add_run(fake_result().model_copy(update={"run_id": "abc123second"}))
    for index in range(12):
        store.add_run(fake_result().model_copy(update={"run_id": f"ffff{index:02d}"}))
    try:
        assert [r.run_id for r in load_reference("abc123f", store)] == [first]
        assert [r.run_id for r in load_reference("ffff03", store)] == ["ffff03"]
        with pytest.raises(
            UsageError, match=r"'abc1' is ambiguous: 2 runs start with it: abc123first, abc123s"
        ):
            load_reference("abc1", store)
        with pytest.raises(UsageError, match=r"more than 10 runs start with it: ffff00, .*ffff09, \.\.\.$"):
            load_reference("ffff", store)
        with pytest.raises(UsageError, match="'abc': a run id prefix needs at least 4 characters"):
            load_reference("abc", store)
        with pytest.raises(UsageError, match="'abcd': no such result file or stored run id"):
            load_reference("abcd", store)
    finally:
        store.close()


def test_schema_is_versioned_and_reopen_does_not_remigrate(backend: Backend) -> None:
    open_store(backend.location).close()
    store = open_store(backend.location)
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    rows = backend.sql("SELECT version FROM schema_migrations ORDER BY version")
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    store.close()


def test_an_older_schema_is_migrated_and_keeps_its_runs(backend: Backend) -> None:
    """A store made by an edgekit that knew only migration 1 (no plan tables) is brought up to date."""
    backend.sql("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    for statement in backend.dialect.migration(1):
        backend.sql(statement)
    backend.sql("INSERT INTO schema_migrations VALUES (1, 'then')")
    old = {**fake_result().to_dict(), "run_id": "old-run", "created_at": "2025-01-01T00:00:00+00:00"}
    backend.sql(
        "INSERT INTO runs (run_id, created_at, device, model, artifact_sha256, verdict, fingerprint_hash, "
        "fingerprint_json, result_json) VALUES (?,?,?,?,?,?,?,?,?)",
        ("old-run", old["created_at"], "local", "mlp", "ab" * 32, "pass", "f" * 16, "{}", json.dumps(old)),
    )
    store = open_store(backend.location)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.get("old-run").result.to_dict() == old
    plan_run_id, resumed = store.start_plan_run("nightly")
    new_run = store.add_run(fake_result(), plan_cell=(plan_run_id, "local", "cell"))
    assert not resumed and store.done_cells(plan_run_id) == {("local", "cell")}
    assert [r.run_id for r in store.runs()] == [new_run, "old-run"]
    store.close()


def test_newer_schema_is_refused(backend: Backend) -> None:
    open_store(backend.location).close()
    backend.sql("INSERT INTO schema_migrations VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this edgekit") as caught:
        open_store(backend.location)
    assert f"schema {SCHEMA_VERSION + 1}" in caught.value.message and "\n" not in caught.value.message


def test_failed_insert_leaves_nothing(backend: Backend) -> None:
    """The run and its plan cell go in one transaction: a cell of no plan run fails it whole."""
    store = open_store(backend.location)
    with pytest.raises(StoreError, match="cannot store run"):
        store.add_run(fake_result(), plan_cell=("no-such-plan-run", "pi", "a"))
    assert store.runs() == []
    store.add_run(fake_result())
    assert len(store.runs()) == 1
    store.close()


def test_storing_a_run_again_is_idempotent_and_another_result_under_its_id_is_refused(
    backend: Backend,
) -> None:
    """A retried or flushed write stores its run once; a different result under a stored run id is
    one StoreError line, and the store stays usable."""
    store = open_store(backend.location)
    store.add_run(fake_result().model_copy(update={"run_id": "same"}))
    store.add_run(fake_result().model_copy(update={"run_id": "same"}))
    assert backend.sql("SELECT COUNT(*) FROM runs WHERE run_id = 'same'") == [(1,)]
    with pytest.raises(StoreError, match="run id same is already stored with another result"):
        store.add_run(fake_result(p50=2.0).model_copy(update={"run_id": "same"}))
    assert store.get("same").result.latency_ms.p50 == 1.0  # type: ignore[union-attr]
    store.add_run(fake_result())
    assert len(store.runs()) == 2
    store.close()


def test_result_json_is_stored_verbatim(backend: Backend) -> None:
    store = open_store(backend.location)
    run_id = store.add_run(fake_result())
    store.close()
    raw = backend.sql("SELECT result_json FROM runs WHERE run_id = ?", (run_id,))[0][0]
    assert raw == json.dumps({**fake_result().to_dict(), "run_id": run_id}, sort_keys=True)


def _insert_raw(backend: Backend, run_id: str, result: dict[str, Any]) -> None:
    backend.sql(
        "INSERT INTO runs (run_id, created_at, device, model, artifact_sha256, verdict, fingerprint_hash, "
        "fingerprint_json, result_json) VALUES (?,?,?,?,?,?,?,?,?)",
        (run_id, result["created_at"], "local", "mlp", "ab" * 32, "pass", "f" * 16, "{}", json.dumps(result)),
    )


def test_a_run_of_a_newer_result_schema_is_refused_in_one_line(backend: Backend) -> None:
    open_store(backend.location).close()
    newer = {**fake_result().to_dict(), "schema": RESULT_SCHEMA + 1, "renamed": 1}
    _insert_raw(backend, "from-the-future", newer)
    store = open_store(backend.location)
    with pytest.raises(StoreError, match=f"result schema {RESULT_SCHEMA + 1} is newer") as caught:
        store.get("from-the-future")
    assert "from-the-future" in caught.value.message and "\n" not in caught.value.message
    with pytest.raises(StoreError, match="upgrade edgekit"):
        store.runs()
    store.close()


def test_a_stored_run_that_is_not_a_result_is_one_line(backend: Backend) -> None:
    open_store(backend.location).close()
    broken = fake_result().to_dict()
    del broken["latency_ms"]
    _insert_raw(backend, "broken", broken)
    store = open_store(backend.location)
    with pytest.raises(StoreError, match="run broken: not a valid edgekit result: latency_ms") as caught:
        store.get("broken")
    assert "\n" not in caught.value.message
    store.close()


def test_every_run_stored_by_the_first_schema_1_edgekit_loads(backend: Backend, tmp_path: Path) -> None:
    """tests/data/results_v1/results.sqlite was written by the pre-restructure edgekit; its runs load
    as Results (whole: same JSON) and can be stored again, on either back end."""
    copy = tmp_path / "v1.sqlite"
    copy.write_bytes((V1_DIR / "results.sqlite").read_bytes())
    old = open_store(copy)
    runs = old.runs(limit=100)
    old.close()
    assert len(runs) == 5
    raw = sqlite3.connect(copy).execute("SELECT run_id, result_json FROM runs").fetchall()
    for run in runs:
        assert isinstance(run.result, Result) and run.result.run_id == run.run_id
        assert run.result.to_dict() == json.loads(dict(raw)[run.run_id])
    store = open_store(backend.location)
    for run in reversed(runs):
        store.add_run(run.result)
    assert [r.result.to_dict() for r in store.runs(limit=100)] == [r.result.to_dict() for r in runs]
    store.close()


def test_plan_runs_resume_redo_and_finish(backend: Backend) -> None:
    store = open_store(backend.location)
    plan_run_id, resumed = store.start_plan_run("nightly")
    assert not resumed
    store.add_run(fake_result(), plan_cell=(plan_run_id, "pi", "a"))
    redone = store.add_run(fake_result(), plan_cell=(plan_run_id, "pi", "a"))  # a cell run again
    store.add_run(fake_result(), plan_cell=(plan_run_id, "pi", "b"))
    assert store.start_plan_run("nightly") == (plan_run_id, True)
    assert store.done_cells(plan_run_id) == {("pi", "a"), ("pi", "b")}
    assert backend.sql("SELECT run_id FROM plan_cells WHERE cell = 'a'") == [(redone,)]
    fresh_id, resumed = store.start_plan_run("nightly", fresh=True)
    assert fresh_id != plan_run_id and not resumed and store.done_cells(fresh_id) == set()
    store.finish_plan_run(fresh_id)
    third_id, resumed = store.start_plan_run("nightly")
    assert third_id not in (plan_run_id, fresh_id) and not resumed  # both earlier runs are finished
    store.close()


def test_many_openers_of_a_new_store_at_once_all_store(backend: Backend) -> None:
    """Fleet threads and parallel processes open the same fresh store at the same moment."""
    start = threading.Barrier(8)

    def open_and_add(index: int) -> str:
        start.wait()
        store = open_store(backend.location)
        try:
            return store.add_run(fake_result(device=f"d{index}"))
        finally:
            store.close()

    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(open_and_add, range(8)))
    store = open_store(backend.location)
    assert sorted(r.run_id for r in store.runs()) == sorted(run_ids)
    assert store.schema_version() == SCHEMA_VERSION
    assert backend.sql("SELECT COUNT(*) FROM schema_migrations") == [(SCHEMA_VERSION,)]
    store.close()


def test_one_store_shared_by_threads(backend: Backend) -> None:
    store = open_store(backend.location)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.add_run(fake_result(device=f"d{i}")), range(40)))
    assert len(store.runs(limit=100)) == 40
    store.close()


def test_two_store_objects_written_by_many_threads(backend: Backend) -> None:
    """Two hosts sharing one store, each with fleet threads: every write lands, and a plan started
    from both at once gets exactly one new plan run (writers take turns, as on SQLite)."""
    stores = [open_store(backend.location), open_store(backend.location)]
    start = threading.Barrier(8)

    def work(index: int) -> tuple[str, bool]:
        store = stores[index % 2]
        start.wait()
        plan = store.start_plan_run("shared")
        for n in range(10):
            store.add_run(fake_result(device=f"d{index}-{n}"), plan_cell=(plan[0], f"d{index}", str(n)))
            store.runs(device=f"d{index}-{n}")
        return plan

    with ThreadPoolExecutor(8) as pool:
        plans = list(pool.map(work, range(8)))
    assert len({plan_run_id for plan_run_id, _ in plans}) == 1
    assert sorted(resumed for _, resumed in plans) == [False] + [True] * 7
    assert len(stores[0].runs(limit=1000)) == 80
    assert len(stores[1].done_cells(plans[0][0])) == 80
    for store in stores:
        store.close()


def test_postgresql_role_that_may_not_create_tables(pg_url: str) -> None:
    """A team member's role with rights on the tables only: uses a migrated store, and gets one clear
    line, not a traceback, on a store nobody has migrated yet."""
    from edgekit.store.postgres import POSTGRES

    admin = Backend("postgresql", pg_url, POSTGRES)
    role = f"member_{uuid.uuid4().hex[:8]}"
    admin.sql(f"CREATE ROLE {role} LOGIN")
    member_url = pg_url.replace("postgres@", f"{role}@", 1)
    with pytest.raises(StoreError, match="cannot migrate: permission denied") as caught:
        open_store(member_url)
    assert "\n" not in caught.value.message

    open_store(pg_url).close()  # the owner migrates
    admin.sql(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}")
    store = open_store(member_url)
    plan_run_id, _ = store.start_plan_run("nightly")
    run_id = store.add_run(fake_result(), plan_cell=(plan_run_id, "pi", "a"))
    assert [r.run_id for r in store.runs()] == [run_id]
    assert store.done_cells(plan_run_id) == {("pi", "a")}
    store.close()


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        open_store(path)


def assert_one_masked_line(error: StoreError, *fragments: str) -> None:
    assert "\n" not in error.message
    assert "s3cret" not in error.message and "s3cret" not in str(error.data)
    assert "***" in error.message
    for fragment in fragments:
        assert fragment in error.message


def test_postgresql_server_not_listening_is_one_masked_line() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql://team:s3cret@127.0.0.1:{port}/results")
    assert_one_masked_line(
        caught.value, f"postgresql://team:***@127.0.0.1:{port}/results", "cannot connect", "refused"
    )


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("postgresql://postgres:s3cret@127.0.0.1:{port}/no_such_db", 'database "no_such_db" does not exist'),
        ("postgres://nobody:s3cret@127.0.0.1:{port}/postgres", 'role "nobody" does not exist'),
        ("postgresql://postgres@127.0.0.1:{port}/postgres?password=s3cret&sslmode=nope", "sslmode"),
        ("postgresql://postgres:s3cret@127.0.0.1:notaport/postgres", "notaport"),
    ],
)
def test_bad_postgresql_url_is_one_masked_line(pg_server: PgServer, template: str, fragment: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(template.format(port=pg_server.port))
    assert_one_masked_line(caught.value, fragment)


def test_postgresql_without_psycopg_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the team extra were not installed
    with pytest.raises(StoreError, match=r"pip install 'edgekit\[team\]'") as caught:
        open_store("postgresql://team@db.example/results")
    assert "\n" not in caught.value.message


def test_unknown_url_scheme_is_refused_masked() -> None:
    with pytest.raises(StoreError, match="unknown URL scheme") as caught:
        open_store("mysql://team:s3cret@db.example/results")
    assert_one_masked_line(caught.value)


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("postgresql://team:s3cret@db:5432/results", "postgresql://team:***@db:5432/results"),
        ("postgresql://team@db/results", "postgresql://team@db/results"),
        (
            "postgres://db/results?sslmode=require&password=s3cret",
            "postgres://db/results?sslmode=require&password=***",
        ),
        ("postgresql://a:b%40c@h1:1,h2:2/db", "postgresql://a:***@h1:1,h2:2/db"),
        ("/home/me/results.sqlite", "/home/me/results.sqlite"),
        ("postgresql://", "postgresql://"),  # libpq's defaults: not a file path 'postgresql:'
    ],
)
def test_mask_password(location: str, shown: str) -> None:
    assert mask_password(location) == shown


def test_flush_writes_spooled_runs_once_and_leaves_files_that_are_not_entries(backend: Backend) -> None:
    from edgekit.core.errors import EdgekitWarning
    from edgekit.store.open import spool_of
    from edgekit.store.spool import RUN, PendingWrite

    spool = spool_of(backend.location)
    spooled = fake_result(device="spooled").model_copy(update={"run_id": uuid.uuid4().hex})
    entry = spool.put(PendingWrite(RUN, result=spooled))
    junk = spool.directory / "00000000000000000000-junk.json"
    junk.write_text('{"spool": 1, "kind"')  # a half-written file (a spool file never is one: atomic)
    with pytest.warns(EdgekitWarning, match="not JSON"):
        store = open_store(backend.location, spool=True)  # a writer opening the store flushes it
    assert [r.run_id for r in store.runs()] == [spooled.run_id]
    assert not entry.exists() and junk.exists()
    with pytest.warns(EdgekitWarning, match="spooled entry left in"):
        counts = store.flush_spool()
    assert (counts.written, counts.already_stored, counts.left) == (0, 0, [junk])
    assert [r.run_id for r in store.runs()] == [spooled.run_id]
    store.close()
