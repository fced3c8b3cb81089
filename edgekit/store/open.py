"""Opening a results store by location: a SQLite file path or a postgresql:// URL."""

from __future__ import annotations

from pathlib import Path

from edgekit.core.errors import StoreError
from edgekit.store.base import ResultsStore
from edgekit.store.location import is_postgres_url, mask_password
from edgekit.store.sqlite import SqliteStore


def open_store(location: str | Path) -> ResultsStore:
    """A store from a SQLite file path, or a postgresql:// (postgres://) URL."""
    text = str(location)
    if is_postgres_url(text):
        from edgekit.store.postgres import PostgresStore

        return PostgresStore(text)
    if "://" in text:
        shown = mask_password(text)
        raise StoreError(
            f"--store {shown}: unknown URL scheme; give a SQLite file path or a postgresql:// URL",
            store=shown,
        )
    return SqliteStore(Path(text).expanduser())
