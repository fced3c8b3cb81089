"""Write a file so that a reader sees the old whole file or the new whole file, never half of one."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from edgekit.core.errors import UsageError


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`
    (Prometheus' textfile collector, a web server or a CI job may read it at any moment).

    A `path` that is a device, FIFO or socket (``/dev/stdout``, ``/dev/null``, a pipe) is
    written into, never replaced (as root a rename over ``/dev/null`` replaced the device); a
    symbolic link to a file has its target replaced, not the link. Raises UsageError (exit 2)
    when `path` is a directory or cannot be written."""
    try:
        mode = os.stat(path).st_mode  # follows links
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory; name a file to write")
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
