"""The results store on PostgreSQL (psycopg 3): the same schema and queries as SQLite, for teams.

Needs the `team` extra: pip install 'edgekit[team]'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from edgekit.core.errors import StoreError
from edgekit.store.base import Dialect, ResultsStore, one_line
from edgekit.store.location import mask_password

if TYPE_CHECKING:
    from psycopg import Connection

POSTGRES = Dialect("postgresql", id_pk="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", placeholder="%s")
# pg_advisory_xact_lock key held by every write transaction (and so by migrations): "edgekit" in ASCII.
WRITE_LOCK_KEY = 0x6564_6765_6B69_74
CONNECT_TIMEOUT_S = 10
# SQLSTATE classes of a server that went away: 08 connection exception, 57 operator intervention
# (57P01 admin shutdown on a restart, 57P03 "the database system is starting up").
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57")
# libpq's messages when connecting finds no server answering (its connect errors carry no
# SQLSTATE). A server that answers and refuses (a missing database or role, bad credentials:
# "FATAL: ...") or a malformed URL is not among them: that fails at once, never spooled.
UNAVAILABLE_CONNECT_MESSAGES = (
    "connection refused",
    "timeout expired",
    "timed out",
    "failed to resolve host",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
    "connection reset",
    "server closed the connection unexpectedly",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
)


def _psycopg() -> ModuleType:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "the PostgreSQL results store needs psycopg: pip install 'edgekit[team]'", missing="psycopg"
        ) from None
    return psycopg


class PostgresStore(ResultsStore):
    """One psycopg connection in autocommit mode: a read is its own statement, a write is an explicit
    transaction that first takes the store's advisory lock, so writers run one at a time across every
    host sharing the database, as they do on a SQLite file (BEGIN IMMEDIATE).

    A lost connection (a server restart, a network blip) is reconnected before the next operation.
    `read_only`: no migration, and a database without edgekit tables is StoreError "no results
    store at URL" (data `missing`). `allow_down`: a server that does not answer now is not an error
    here (a writer with a spool: its writes are retried, then spooled)."""

    dialect = POSTGRES

    def __init__(self, url: str, *, read_only: bool = False, allow_down: bool = False) -> None:
        super().__init__()
        self.location = mask_password(url)
        self._url = url
        self._read_only = read_only
        self._driver = _psycopg()
        self._db_errors = (self._driver.Error,)
        self._pg: Connection[tuple[object, ...]] | None = None
        try:
            self._connect()
        except StoreError as exc:
            if not (allow_down and exc.data.get("unavailable")):
                raise

    @property
    def connected(self) -> bool:
        return self._pg is not None and not self._pg.closed

    def _connect(self) -> None:
        """Open the connection and migrate (or check) the schema; StoreError, data `unavailable`
        when no server answered."""
        self._drop_connection()
        driver = self._driver
        try:
            connection = driver.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except driver.Error as exc:
            reason = _without_secrets(one_line(exc), self._url)
            raise StoreError(
                f"results store {self.location}: cannot connect: {reason}",
                store=self.location,
                unavailable=self._unavailable(exc),
            ) from None
        self._pg = connection
        self._conn = connection
        try:
            self._open_schema(self._read_only)
        except driver.Error as exc:
            self._drop_connection()
            raise StoreError(
                f"results store {self.location}: cannot migrate: {one_line(exc)}",
                store=self.location,
                unavailable=self._unavailable(exc),
            ) from None
        except BaseException:
            self._drop_connection()
            raise

    def _drop_connection(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(self._driver.Error):
                self._pg.close()
        self._pg = None

    def _ready(self) -> None:
        if not self.connected or (self._pg is not None and self._pg.broken):
            self._connect()

    def _unavailable(self, exc: Exception) -> bool:
        if not isinstance(exc, self._driver.OperationalError | self._driver.InterfaceError):
            return False
        state = getattr(exc, "sqlstate", None)
        if state:
            return str(state)[:2] in UNAVAILABLE_SQLSTATE_CLASSES
        if self._pg is not None and self._pg.broken:
            return True
        text = str(exc).lower()
        return any(message in text for message in UNAVAILABLE_CONNECT_MESSAGES)

    @contextmanager
    def _begin(self) -> Iterator[None]:
        assert self._pg is not None  # _ready() connected it
        with self._pg.transaction():
            self._execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
            yield

    def close(self) -> None:
        with self._lock:
            self._drop_connection()


def _without_secrets(message: str, url: str) -> str:
    """libpq may quote parts of a malformed URL back: never a password."""
    parts = urlsplit(url)
    secrets = [unquote(parts.password or ""), *parse_qs(parts.query).get("password", [])]
    for secret in filter(None, secrets):
        message = message.replace(secret, "***")
    return message
