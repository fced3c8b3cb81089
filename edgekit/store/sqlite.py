"""The results store in a SQLite file: the default (`$EDGEKIT_HOME/results.sqlite`)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgekit.core.errors import StoreError
from edgekit.store.base import SQLITE, ResultsStore

BUSY_TIMEOUT_S = 30.0


class SqliteStore(ResultsStore):
    """A SQLite file: the default store."""

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.location = str(path)
        self._db_errors = (sqlite3.DatabaseError,)
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
    def _begin(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")  # takes the write lock now: writers run one at a time
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
