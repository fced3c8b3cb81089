"""A store's location as given (a SQLite path or a PostgreSQL URL) and as it may be printed."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def is_postgres_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


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
    return urlunsplit(parts._replace(netloc=netloc, query=query))
