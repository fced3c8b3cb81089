"""The results store in a SQLite file: the default (`$EDGEKIT_HOME/results.sqlite`).

Concurrent writers (a fleet run and a user's bench, several processes) share the file safely: WAL
journal mode (readers never block the writer), a busy timeout of BUSY_TIMEOUT_S on every
connection, and write transactions that take the write lock up front (BEGIN IMMEDIATE), so a
writer waits its turn instead of failing; one still locked out after that is retried once, then
spooled (edgekit.store.spool).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from edgekit.core.errors import StoreError
from edgekit.store.base import SQLITE, ResultsStore

BUSY_TIMEOUT_S = 30.0


class SqliteStore(ResultsStore):
    """A SQLite file: the default store. `read_only`: the file must exist and hold a store (else
    StoreError "no results store at PATH", data `missing`); it is opened read-only and never
    migrated, and nothing is created."""

    dialect = SQLITE

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        super().__init__()
        self.path = path
        self.location = str(path)
        self._db_errors = (sqlite3.DatabaseError,)
        if read_only and not path.exists():
            raise StoreError(f"no results store at {path}", path=str(path), missing=True)
        try:
            if read_only:
                uri = f"file:{quote(os.fsencode(path.resolve()))}?mode=ro"  # bytes: any file name
                self._conn = sqlite3.connect(
                    uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
                self._open_schema(read_only=True)
                return
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

    def _unavailable(self, exc: Exception) -> bool:
        """SQLITE_BUSY / SQLITE_LOCKED past the busy timeout: another writer held the file."""
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))

    @contextmanager
    def _begin(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")  # takes the write lock now: writers run one at a time
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
