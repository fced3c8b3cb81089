"""A store's location as given (a SQLite path or a PostgreSQL URL) and as it may be printed."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from edgekit.core.errors import StoreError, UsageError


def is_postgres_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def checked_location(location: str | Path) -> str:
    """The location as text when it can name a store: UsageError for an empty one, StoreError
    (exit 2) for a URL whose scheme is not postgresql:// or postgres://."""
    text = str(location)
    if not text.strip():
        raise UsageError("--store is empty; give a SQLite file path or a postgresql:// URL")
    if "://" in text and not is_postgres_url(text):
        shown = mask_password(text)
        raise StoreError(
            f"--store {shown}: unknown URL scheme; give a SQLite file path or a postgresql:// URL",
            store=shown,
        )
    return text


def mask_password(location: str | Path) -> str:
    """The store's location as it may be printed: a URL's password (user:PASSWORD@ or
    ?password=...) replaced by ***; a file path as it is."""
    text = str(location)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hosts}" if at and ":" in userinfo else parts.netloc
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    if netloc == parts.netloc and query == parts.query:
        return text  # no password: as given (urlunsplit would drop an empty host's '//')
    return urlunsplit(parts._replace(netloc=netloc, query=query))
