"""Host-side run locks: one `fleet run` of a plan at a time (cron and systemd timers overlap).

An flock on a file under $EDGEKIT_HOME/locks; the kernel drops it when the holder dies, so a
killed run never blocks the next one. The file says who holds it, for the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from edgekit.core.errors import UsageError
from edgekit.core.resources import edgekit_home


class RunLocked(UsageError):
    """Another run holds the lock."""


def plan_lock_path(plan_path: Path) -> Path:
    digest = hashlib.sha256(str(plan_path.resolve()).encode()).hexdigest()[:12]
    return edgekit_home() / "locks" / f"fleet-{plan_path.stem}-{digest}.lock"


@contextlib.contextmanager
def run_lock(path: Path, what: str, wait_s: float = 0.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = path.open("a+")
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise RunLocked(f"{what} is already running ({holder}); not starting another") from None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%dT%H:%M:%S")
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}))
        handle.flush()
        yield
    finally:
        handle.close()  # closing drops the flock
