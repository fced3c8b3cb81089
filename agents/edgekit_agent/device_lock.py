"""The device lock: one benchmark at a time per board."""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any, Callable, Dict, Optional

from edgekit_agent.failure import AgentFailure


class DeviceLock:
    """An exclusive flock on <workdir>/bench.lock (or --lock-file), held for the whole bench.

    The kernel drops a flock when its holder dies, so a lock left by a killed process is
    recovered by the next caller without any cleanup; the file only says who holds it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: Optional[IO[str]] = None

    def acquire(
        self,
        timeout_s: float,
        holder: Dict[str, Any],
        on_wait: Callable[[str], None] = lambda held_by: None,
        check: Callable[[], None] = lambda: None,
    ) -> None:
        """Take the lock within timeout_s (on_wait(holder) every 2 s meanwhile), else DeviceBusy;
        check() is called while waiting and may raise (a cancelled request: Cancelled)."""
        try:
            import fcntl
        except ImportError:  # not a POSIX board: no locking
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open: it is the lock
        deadline = time.monotonic() + timeout_s
        next_notice = time.monotonic()
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                try:
                    check()
                except BaseException:
                    handle.close()
                    raise
                handle.seek(0)
                held_by = handle.read().strip() or "unknown"
                if time.monotonic() >= next_notice:
                    on_wait(held_by)
                    next_notice = time.monotonic() + 2.0
                if time.monotonic() >= deadline:
                    handle.close()
                    raise AgentFailure(
                        "DeviceBusy",
                        "device busy (held by %s); waited %.0f s" % (held_by, timeout_s),
                        holder=held_by,
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder, sort_keys=True))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing drops the flock
            self.handle = None
