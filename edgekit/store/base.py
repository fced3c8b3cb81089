"""The results store's one interface: every run kept whole, schema versioned with migrations.

The schema, the migrations and every query live here once; a back end (edgekit.store.sqlite,
edgekit.store.postgres) only brings its connection, its Dialect and its write transaction.

Why not SQLAlchemy Core + Alembic: what differs between the two back ends is two strings (the
auto-numbered key's column type and the driver's placeholder: `Dialect`) and the write lock
(BEGIN IMMEDIATE vs a PostgreSQL advisory lock); the migration runner is the 30 lines of
`_migrate`. SQLAlchemy would replace the two strings but not the write lock or the migrations'
"up to date without a write lock" path, and Alembic would add its own version table next to
`schema_migrations`, an env script and a stamping step for stores already written, for two
append-only migrations. The library does not remove our code here, so it is not used.
"""

from __future__ import annotations

import json
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from edgekit.core.errors import StoreError
from edgekit.core.result import Result, load_result

# Append-only: never edit a shipped migration, add the next one. Written once for both back ends:
# {ID_PK} is the dialect's auto-numbered primary key; everything else is common SQL.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id {ID_PK},
        run_id TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        device TEXT NOT NULL,
        model TEXT NOT NULL,
        artifact_sha256 TEXT NOT NULL,
        verdict TEXT NOT NULL,
        fingerprint_hash TEXT NOT NULL,
        fingerprint_json TEXT NOT NULL,
        result_json TEXT NOT NULL
    );
    CREATE INDEX runs_device_model ON runs (device, model, created_at);
    CREATE INDEX runs_artifact ON runs (artifact_sha256);
    """,
    """
    CREATE TABLE plan_runs (
        plan_run_id TEXT PRIMARY KEY,
        plan TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE plan_cells (
        plan_run_id TEXT NOT NULL REFERENCES plan_runs (plan_run_id),
        device TEXT NOT NULL,
        cell TEXT NOT NULL,
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        PRIMARY KEY (plan_run_id, device, cell)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_RUN_COLUMNS = "run_id, created_at, device, model, verdict, result_json"


@dataclass(frozen=True)
class Dialect:
    """What differs between back ends in the SQL text itself."""

    name: str
    id_pk: str  # an auto-numbered primary key column type
    placeholder: str  # the driver's marker; queries here use "?" and hold no literal "?" or "%"

    def sql(self, query: str) -> str:
        return query if self.placeholder == "?" else query.replace("?", self.placeholder)

    def migration(self, version: int) -> list[str]:
        """The statements of migration `version` (1-based) in this dialect."""
        script = MIGRATIONS[version - 1].replace("{ID_PK}", self.id_pk)
        return [s.strip() for s in script.split(";") if s.strip()]


SQLITE = Dialect("sqlite", id_pk="INTEGER PRIMARY KEY AUTOINCREMENT", placeholder="?")


@dataclass(frozen=True)
class StoredRun:
    """One stored run: its index columns and the whole result, upgraded to today's schema."""

    run_id: str
    created_at: str
    device: str
    model: str
    verdict: str
    result: Result


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    """The part of a DB-API connection both drivers (sqlite3, psycopg 3) share."""

    def execute(self, query: Any, params: Sequence[Any] = ..., /) -> _Cursor: ...
    def close(self) -> None: ...


class ResultsStore(ABC):
    """The schema, migrations and queries, over one connection shared by threads (a lock makes them
    take turns). Subclasses open the connection, then call _migrate(); they bring `_begin`: a write
    transaction that runs alone among writers (BEGIN IMMEDIATE on SQLite, an advisory lock on
    PostgreSQL), which start_plan_run's read-then-write and the migrations rely on."""

    dialect: Dialect
    location: str  # for messages: a path, or a URL with its password masked
    _conn: _Connection
    _db_errors: tuple[type[Exception], ...]

    def __init__(self) -> None:
        self._lock = threading.RLock()

    @abstractmethod
    def _begin(self) -> AbstractContextManager[object]: ...

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, self._begin():  # threads sharing the connection: one transaction at a time
            yield

    def _execute(self, query: str, args: Sequence[Any] = ()) -> _Cursor:
        return self._conn.execute(self.dialect.sql(query), tuple(args))

    def _fetch(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock, self._errors("cannot read runs"):
            return self._execute(query, args).fetchall()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Driver errors become one StoreError line at this boundary."""
        try:
            yield
        except self._db_errors as exc:
            raise StoreError(
                f"results store {self.location}: {doing}: {one_line(exc)}", store=self.location
            ) from None

    def schema_version(self) -> int:
        with self._lock:
            row = self._execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        # Up to date, the common case: no DDL and no write lock, so a role that may not create
        # tables (PostgreSQL 15 grants no CREATE on the public schema) can still use the store.
        if self._refuse_newer(self._version_if_migrated()) == SCHEMA_VERSION:
            return
        with self._transaction():
            self._execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = self._refuse_newer(self.schema_version())  # another opener may have migrated
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in self.dialect.migration(version):
                    self._execute(statement)
                self._execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, _now())
                )

    def _version_if_migrated(self) -> int:
        """The schema version, 0 when there is no schema_migrations table yet."""
        try:
            return self.schema_version()
        except self._db_errors:
            return 0

    def _refuse_newer(self, version: int) -> int:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"results store {self.location} has schema {version}, newer than this edgekit "
                f"({SCHEMA_VERSION}); upgrade edgekit",
                store=self.location,
            )
        return version

    def add_run(self, result: Result, plan_cell: tuple[str, str, str] | None = None) -> str:
        """Store one whole result in one transaction; returns its run id (also set on result).
        `plan_cell` = (plan_run_id, device, cell) marks that fleet cell done in the same transaction."""
        run_id = result.run_id or uuid.uuid4().hex
        result.run_id = run_id
        fingerprint = result.fingerprint.to_dict() if result.fingerprint is not None else {}
        with self._errors("cannot store run"), self._transaction():
            self._execute(
                "INSERT INTO runs (run_id, created_at, device, model, artifact_sha256, verdict, "
                "fingerprint_hash, fingerprint_json, result_json) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    result.created_at,
                    result.device.name,
                    result.model.name,
                    result.artifact.sha256,
                    result.budget.verdict,
                    fingerprint.get("hash", ""),
                    json.dumps(fingerprint, sort_keys=True),
                    json.dumps(result.to_dict(), sort_keys=True),
                ),
            )
            if plan_cell is not None:
                # Upsert syntax both speak (SQLite >= 3.24): a redone cell points at its newest run.
                self._execute(
                    "INSERT INTO plan_cells (plan_run_id, device, cell, run_id) VALUES (?,?,?,?) "
                    "ON CONFLICT (plan_run_id, device, cell) DO UPDATE SET run_id = excluded.run_id",
                    (*plan_cell, run_id),
                )
        return run_id

    def runs(
        self, *, device: str | None = None, model: str | None = None, limit: int = 50
    ) -> list[StoredRun]:
        """Newest first."""
        clauses, args = [], []
        if device is not None:
            clauses.append("device = ?")
            args.append(device)
        if model is not None:
            clauses.append("model = ?")
            args.append(model)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._fetch(
            f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*args, limit),
        )
        return [self._stored_run(row) for row in rows]

    def get(self, run_id: str) -> StoredRun | None:
        rows = self._fetch(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return self._stored_run(rows[0]) if rows else None

    def get_by_prefix(self, prefix: str) -> StoredRun | None:
        """The one run whose id starts with prefix; None when none or several do."""
        ids = self.ids_with_prefix(prefix, limit=2)
        return self.get(ids[0]) if len(ids) == 1 else None

    def ids_with_prefix(self, prefix: str, limit: int = 11) -> list[str]:
        """Up to `limit` run ids that start with prefix, sorted."""
        rows = self._fetch(
            "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id LIMIT ?",
            (len(prefix), prefix, limit),
        )
        return [str(row[0]) for row in rows]

    def start_plan_run(self, plan: str, fresh: bool = False) -> tuple[str, bool]:
        """(plan_run_id, resumed): the plan's unfinished run if there is one (and not `fresh`), else a
        new one. A run that ended normally, with or without failed devices, is finished."""
        with self._errors("cannot start plan run"), self._transaction():
            row = self._execute(
                "SELECT plan_run_id FROM plan_runs WHERE plan = ? AND finished_at IS NULL "
                "ORDER BY started_at DESC LIMIT 1",
                (plan,),
            ).fetchone()
            if row and not fresh:
                return str(row[0]), True
            if row:  # superseded by a fresh start: it will never be resumed
                self._execute(
                    "UPDATE plan_runs SET finished_at = ? WHERE plan = ? AND finished_at IS NULL",
                    (_now(), plan),
                )
            plan_run_id = uuid.uuid4().hex[:16]
            self._execute(
                "INSERT INTO plan_runs (plan_run_id, plan, started_at) VALUES (?,?,?)",
                (plan_run_id, plan, _now()),
            )
            return plan_run_id, False

    def done_cells(self, plan_run_id: str) -> set[tuple[str, str]]:
        rows = self._fetch("SELECT device, cell FROM plan_cells WHERE plan_run_id = ?", (plan_run_id,))
        return {(str(r[0]), str(r[1])) for r in rows}

    def finish_plan_run(self, plan_run_id: str) -> None:
        with self._errors("cannot finish plan run"), self._transaction():
            self._execute("UPDATE plan_runs SET finished_at = ? WHERE plan_run_id = ?", (_now(), plan_run_id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _stored_run(self, row: Sequence[Any]) -> StoredRun:
        """A row as a StoredRun; a result this edgekit cannot read (a newer result schema, or
        not a result) is one StoreError line naming the run."""
        where = f"results store {self.location}: run {row[0]}"
        try:
            data = json.loads(row[5])
        except ValueError as exc:
            raise StoreError(f"{where}: result is not JSON: {exc}", store=self.location) from None
        result = load_result(data, where, StoreError)
        return StoredRun(row[0], row[1], row[2], row[3], row[4], result)


def one_line(exc: BaseException) -> str:
    """A driver's message, folded onto one line (libpq's run over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
