"""Opening a results store by location: a SQLite file path or a postgresql:// URL."""

from __future__ import annotations

from pathlib import Path

from edgekit.core.errors import StoreError
from edgekit.core.resources import default_store_path
from edgekit.store.base import ResultsStore
from edgekit.store.location import checked_location, is_postgres_url, mask_password
from edgekit.store.spool import Spool
from edgekit.store.sqlite import SqliteStore


def open_store(location: str | Path, *, read_only: bool = False, spool: bool = False) -> ResultsStore:
    """A store from a SQLite file path, or a postgresql:// (postgres://) URL.

    `read_only` (commands that only read stored results): nothing is created or migrated; a SQLite
    path with no file, or a database without edgekit tables, is StoreError "no results store at
    LOCATION" (data `missing`). `spool` (commands that write results): writes the store does not
    take because it does not answer go to the local spool (edgekit.store.spool) with a warning,
    a PostgreSQL server that does not answer now is not an error, and the writes spooled earlier
    for this store are written now when it answers. Raises UsageError for an empty location,
    StoreError for a store that cannot be opened: a URL scheme other than postgresql://, and a
    SQLite file to create in a directory that does not exist (only the default store,
    $EDGEKIT_HOME/results.sqlite, has its directory created)."""
    text = checked_location(location)
    store: ResultsStore
    if is_postgres_url(text):
        from edgekit.store.postgres import PostgresStore

        store = PostgresStore(text, read_only=read_only, allow_down=spool and not read_only)
    else:
        path = Path(text).expanduser()
        if not read_only and not path.parent.is_dir() and path.absolute() != default_store_path().absolute():
            raise StoreError(f"--store {text}: no such directory {path.parent}", path=str(path))
        store = SqliteStore(path, read_only=read_only)
    if spool and not read_only:
        store.spool = spool_of(text)
        store.flush_pending()
    return store


def spool_of(location: str | Path) -> Spool:
    """The spool of the store at `location` (a SQLite file by its absolute path, a PostgreSQL
    database by its URL without the password); the errors of open_store for a location that cannot
    name a store."""
    text = checked_location(location)
    if is_postgres_url(text):
        shown = mask_password(text)
        return Spool.for_store(shown, shown)
    path = Path(text).expanduser().resolve()
    return Spool.for_store(str(path), str(Path(text).expanduser()))
