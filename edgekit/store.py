"""Results store: every run kept whole, in SQLite by default, schema versioned with migrations."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgekit.errors import StoreError

# Append-only: never edit a shipped migration, add the next one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    created_at: str
    device: str
    model: str
    verdict: str
    result: dict[str, Any]


BUSY_TIMEOUT_S = 30.0


class SqliteStore:
    """One connection; safe to share between threads (sqlite3 serialises calls on a connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._open_with_retries()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {path}: {exc}", path=str(path)) from None
        except OSError as exc:
            raise StoreError(f"results store {path}: {exc.strerror}", path=str(path)) from None

    def _open_with_retries(self) -> None:
        """Switching to WAL and migrating can meet SQLITE_BUSY without the busy handler being called
        (another process opening the same new file at the same moment): retry those, with backoff."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay_s = 0.05
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay_s > deadline:
                    raise
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 1.0)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:  # threads sharing this connection take turns: one transaction at a time
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"results store {self.path} has schema {current}, newer than this edgekit "
                    f"({SCHEMA_VERSION}); upgrade edgekit",
                    path=str(self.path),
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[version - 1]):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, _now()),
                )

    def add_run(self, result: dict[str, Any], plan_cell: tuple[str, str, str] | None = None) -> str:
        """Store one whole result in one transaction; returns its run id (also set in result).
        `plan_cell` = (plan_run_id, device, cell) marks that fleet cell done in the same transaction."""
        run_id = result.get("run_id") or uuid.uuid4().hex
        result["run_id"] = run_id
        created_at = result.setdefault("created_at", _now())
        fingerprint = result.get("fingerprint") or {}
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO runs (run_id, created_at, device, model, artifact_sha256, verdict, "
                    "fingerprint_hash, fingerprint_json, result_json) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        created_at,
                        result["device"]["name"],
                        result["model"]["name"],
                        result["artifact"]["sha256"],
                        result["budget"]["verdict"],
                        fingerprint.get("hash", ""),
                        json.dumps(fingerprint, sort_keys=True),
                        json.dumps(result, sort_keys=True),
                    ),
                )
                if plan_cell is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO plan_cells (plan_run_id, device, cell, run_id) "
                        "VALUES (?,?,?,?)",
                        (*plan_cell, run_id),
                    )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {self.path}: cannot store run: {exc}") from None
        return str(run_id)

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
        rows = self._conn.execute(
            f"SELECT run_id, created_at, device, model, verdict, result_json FROM runs {where} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [StoredRun(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def get(self, run_id: str) -> StoredRun | None:
        row = self._conn.execute(
            "SELECT run_id, created_at, device, model, verdict, result_json FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        return StoredRun(row[0], row[1], row[2], row[3], row[4], json.loads(row[5])) if row else None

    def start_plan_run(self, plan: str, fresh: bool = False) -> tuple[str, bool]:
        """(plan_run_id, resumed): the plan's unfinished run if there is one (and not `fresh`), else a
        new one. A run that ended normally, with or without failed devices, is finished."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT plan_run_id FROM plan_runs WHERE plan = ? AND finished_at IS NULL "
                "ORDER BY started_at DESC LIMIT 1",
                (plan,),
            ).fetchone()
            if row and not fresh:
                return str(row[0]), True
            if row:  # superseded by a fresh start: it will never be resumed
                conn.execute(
                    "UPDATE plan_runs SET finished_at = ? WHERE plan = ? AND finished_at IS NULL",
                    (_now(), plan),
                )
            plan_run_id = uuid.uuid4().hex[:16]
            conn.execute(
                "INSERT INTO plan_runs (plan_run_id, plan, started_at) VALUES (?,?,?)",
                (plan_run_id, plan, _now()),
            )
            return plan_run_id, False

    def done_cells(self, plan_run_id: str) -> set[tuple[str, str]]:
        rows = self._conn.execute(
            "SELECT device, cell FROM plan_cells WHERE plan_run_id = ?", (plan_run_id,)
        ).fetchall()
        return {(str(r[0]), str(r[1])) for r in rows}

    def finish_plan_run(self, plan_run_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE plan_runs SET finished_at = ? WHERE plan_run_id = ?", (_now(), plan_run_id))

    def get_by_prefix(self, prefix: str) -> StoredRun | None:
        """The one run whose id starts with prefix; None when none or several do."""
        rows = self._conn.execute(
            "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? LIMIT 2", (len(prefix), prefix)
        ).fetchall()
        return self.get(rows[0][0]) if len(rows) == 1 else None

    def close(self) -> None:
        self._conn.close()


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def open_store(location: str | Path) -> SqliteStore:
    """A store from a path (SQLite). PostgreSQL URLs come with the team store."""
    text = str(location)
    if "://" in text:
        raise StoreError(f"--store {text}: only SQLite file paths are supported so far", store=text)
    return SqliteStore(Path(text).expanduser())
