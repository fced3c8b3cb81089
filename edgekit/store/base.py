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

import contextlib
import json
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from edgekit.core.errors import StoreError, warn
from edgekit.core.result import Result, load_result
from edgekit.store.spool import FINISH_PLAN_RUN, RUN, PendingWrite, Spool

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
RETRY_PAUSE_S = 1.0  # before the one retry of an operation the store did not answer (a restart, a blip)
_T = TypeVar("_T")


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
    rowcount: int

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
    PostgreSQL), which start_plan_run's read-then-write and the migrations rely on.

    An operation the store does not answer (`_unavailable`: a dropped connection, a server
    restarting, a lock held past the busy timeout) is tried once more after RETRY_PAUSE_S, the back
    end reconnecting first (`_ready`). With a `spool` (open_store(..., spool=True)) a write that
    still fails that way goes to the local spool (edgekit.store.spool) with one warning instead of
    failing the run, and spooled writes are written after the next successful write."""

    dialect: Dialect
    location: str  # for messages: a path, or a URL with its password masked
    spool: Spool | None = None
    _conn: _Connection
    _db_errors: tuple[type[Exception], ...]

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._left_warned: set[Path] = set()  # spool files left, warned about once per open store

    def _ready(self) -> None:
        """Before each operation, under the lock: reconnect when the connection was lost. Raises
        StoreError (data `unavailable`) when the store does not answer. Default: nothing to do."""
        return None

    def _unavailable(self, exc: Exception) -> bool:
        """Whether a driver error means the store did not answer (worth one retry, then the spool),
        not that it refused the request. Default: never."""
        return False

    @abstractmethod
    def _begin(self) -> AbstractContextManager[object]: ...

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, self._begin():  # threads sharing the connection: one transaction at a time
            yield

    def _execute(self, query: str, args: Sequence[Any] = ()) -> _Cursor:
        return self._conn.execute(self.dialect.sql(query), tuple(args))

    def _fetch(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._retrying("cannot read runs", lambda: self._execute(query, args).fetchall())

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Driver errors become one StoreError line at this boundary; its data `unavailable` says
        whether the store did not answer (see _unavailable)."""
        try:
            yield
        except self._db_errors as exc:
            raise StoreError(
                f"results store {self.location}: {doing}: {one_line(exc)}",
                store=self.location,
                unavailable=self._unavailable(exc),
            ) from None

    def _attempt(self, doing: str, operation: Callable[[], _T]) -> _T:
        with self._lock, self._errors(doing):
            self._ready()
            return operation()

    def _retrying(self, doing: str, operation: Callable[[], _T]) -> _T:
        """operation() under the lock, driver errors as StoreError; when the store did not answer,
        once more after RETRY_PAUSE_S (reconnecting first)."""
        try:
            return self._attempt(doing, operation)
        except StoreError as exc:
            if not exc.data.get("unavailable"):
                raise
        time.sleep(RETRY_PAUSE_S)
        return self._attempt(doing, operation)

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

    def _open_schema(self, read_only: bool) -> None:
        """Migrate the store (a writer), or check that it is one this edgekit can read (read-only:
        no DDL, StoreError with data `missing` when it holds no edgekit tables)."""
        if not read_only:
            self._migrate()
        elif self._refuse_newer(self._version_if_migrated()) == 0:
            raise StoreError(
                f"no results store at {self.location} (it holds no edgekit tables)",
                store=self.location,
                missing=True,
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
        `plan_cell` = (plan_run_id, device, cell) marks that fleet cell done in the same transaction.
        Idempotent by run id: the same result stored again is stored once; another result under a
        stored run id is a StoreError. When the store does not answer (after one retry) and this
        store has a spool, the write is spooled with one warning; else StoreError."""
        result.run_id = result.run_id or uuid.uuid4().hex
        self._write(PendingWrite(RUN, result=result, plan_cell=plan_cell))
        return result.run_id

    def _write(self, entry: PendingWrite) -> None:
        try:
            self._retrying(_DOING[entry.kind], partial(self._apply, entry))
        except StoreError as exc:
            if self.spool is None or not exc.data.get("unavailable"):
                raise
            path = self.spool.put(entry)
            warn(
                f"{exc.message}; {entry.what} spooled to {path}: it is written when the store answers "
                "again (the next run that opens this store, or `edgekit store flush`)"
            )
            return
        self.flush_pending()

    def _apply(self, entry: PendingWrite) -> bool:
        """Write one entry in one transaction; False when it was already there."""
        with self._transaction():
            if entry.kind == FINISH_PLAN_RUN:
                return (
                    self._execute(
                        "UPDATE plan_runs SET finished_at = ? WHERE plan_run_id = ? AND finished_at IS NULL",
                        (entry.finished_at, entry.plan_run_id),
                    ).rowcount
                    > 0
                )
            assert entry.result is not None
            inserted = self._insert_run(entry.result)
            if entry.plan_cell is not None:
                # Upsert syntax both speak (SQLite >= 3.24): a redone cell points at its newest run.
                self._execute(
                    "INSERT INTO plan_cells (plan_run_id, device, cell, run_id) VALUES (?,?,?,?) "
                    "ON CONFLICT (plan_run_id, device, cell) DO UPDATE SET run_id = excluded.run_id",
                    (*entry.plan_cell, entry.result.run_id),
                )
            return inserted

    def _insert_run(self, result: Result) -> bool:
        """INSERT the run unless its run id is stored (a retried or flushed write); False then.
        StoreError when the stored run under that id is another result."""
        fingerprint = result.fingerprint.to_dict() if result.fingerprint is not None else {}
        whole = result.to_dict()
        inserted = self._execute(
            "INSERT INTO runs (run_id, created_at, device, model, artifact_sha256, verdict, "
            "fingerprint_hash, fingerprint_json, result_json) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (run_id) DO NOTHING",
            (
                result.run_id,
                result.created_at,
                result.device.name,
                result.model.name,
                result.artifact.sha256,
                result.budget.verdict,
                fingerprint.get("hash", ""),
                json.dumps(fingerprint, sort_keys=True),
                json.dumps(whole, sort_keys=True),
            ),
        ).rowcount
        if inserted:
            return True
        row = self._execute("SELECT result_json FROM runs WHERE run_id = ?", (result.run_id,)).fetchone()
        if row is None or json.loads(row[0]) != json.loads(json.dumps(whole)):
            raise StoreError(
                f"results store {self.location}: run id {result.run_id} is already stored with "
                "another result",
                store=self.location,
            )
        return False

    def flush_spool(
        self, spool: Spool | None = None, *, retry: bool = True, once: bool = False
    ) -> FlushCounts:
        """Write the spooled entries of this store (`spool`, else its own), oldest first; each file
        is removed after its transaction committed. An entry that is not one, or that the store
        refuses, stays (one warning each; with `once`, not again for a file already warned about by
        this open store). Raises StoreError when the store does not answer (after
        one retry unless not `retry`; the entries not yet written stay)."""
        spool = spool or self.spool
        counts = FlushCounts()
        if spool is None:
            return counts
        with self._lock:
            for path in spool.files():
                try:
                    entry = spool.read(path)
                    if entry is None:  # another process flushed it meanwhile
                        continue
                    attempt = self._retrying if retry else self._attempt
                    wrote = attempt(_DOING[entry.kind], partial(self._apply, entry))
                except StoreError as exc:
                    if exc.data.get("unavailable"):
                        raise
                    if not (once and path in self._left_warned):
                        self._left_warned.add(path)
                        warn(f"{exc.message}; spooled entry left in {path}")
                    counts.left.append(path)
                    continue
                path.unlink(missing_ok=True)
                if wrote:
                    counts.written += 1
                else:
                    counts.already_stored += 1
        return counts

    def flush_pending(self) -> None:
        """The spooled writes of this store, quietly and without a retry: called after each
        successful write and when a writer opens the store; what the store does not take stays."""
        if self.spool is None or not self.spool.files():
            return
        with contextlib.suppress(StoreError):
            self.flush_spool(retry=False, once=True)  # a writer flushes after each write: warn once

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
        new one. A run that ended normally, with or without failed devices, is finished. Never
        spooled: StoreError when the store does not answer (after one retry)."""
        return self._retrying("cannot start plan run", partial(self._start_plan_run, plan, fresh))

    def _start_plan_run(self, plan: str, fresh: bool) -> tuple[str, bool]:
        with self._transaction():
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
        """Mark the plan run finished (spooled like a result when the store does not answer)."""
        self._write(PendingWrite(FINISH_PLAN_RUN, plan_run_id=plan_run_id, finished_at=_now()))

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


_DOING = {RUN: "cannot store run", FINISH_PLAN_RUN: "cannot finish plan run"}


@dataclass
class FlushCounts:
    """What flush_spool did: entries written, entries the store already had (their files removed
    too), and files left in the spool (not an entry, or refused by the store)."""

    written: int = 0
    already_stored: int = 0
    left: list[Path] = field(default_factory=list)


def one_line(exc: BaseException) -> str:
    """A driver's message, folded onto one line (libpq's run over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
