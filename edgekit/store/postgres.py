"""The results store on PostgreSQL (psycopg 3): the same schema and queries as SQLite, for teams.

Needs the `team` extra: pip install 'edgekit[team]'.
"""

from __future__ import annotations

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
    host sharing the database, as they do on a SQLite file (BEGIN IMMEDIATE)."""

    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        super().__init__()
        self.location = mask_password(url)
        driver = _psycopg()
        self._db_errors = (driver.Error,)
        try:
            self._pg: Connection[tuple[object, ...]] = driver.connect(
                url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except driver.Error as exc:
            raise StoreError(
                f"results store {self.location}: cannot connect: {_without_secrets(one_line(exc), url)}",
                store=self.location,
            ) from None
        self._conn = self._pg
        try:
            self._migrate()
        except driver.Error as exc:
            self._conn.close()
            raise StoreError(
                f"results store {self.location}: cannot migrate: {one_line(exc)}", store=self.location
            ) from None
        except BaseException:
            self._conn.close()
            raise

    @contextmanager
    def _begin(self) -> Iterator[None]:
        with self._pg.transaction():
            self._execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
            yield


def _without_secrets(message: str, url: str) -> str:
    """libpq may quote parts of a malformed URL back: never a password."""
    parts = urlsplit(url)
    secrets = [unquote(parts.password or ""), *parse_qs(parts.query).get("password", [])]
    for secret in filter(None, secrets):
        message = message.replace(secret, "***")
    return message
