"""A line-oriented agent channel over any pair of byte streams (a subprocess's pipes, an SSH channel).

Background threads drain stdout (into a queue the caller reads with a timeout) and stderr (into
a short tail kept for error messages), so a chatty agent can never block on a full pipe.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterable

from edgekit.core.errors import DeviceError

_EOF = object()


class QueuedLineChannel:
    def __init__(
        self,
        device_name: str,
        stdout: Iterable[bytes],
        stderr: Iterable[bytes],
        write: Callable[[bytes], None],
        close: Callable[[], None],
    ) -> None:
        self.device_name = device_name
        self._write = write
        self._close = close
        self._lines: queue.Queue[object] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        threading.Thread(target=self._pump_stdout, args=(stdout,), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(stderr,), daemon=True).start()

    def _pump_stdout(self, stream: Iterable[bytes]) -> None:
        try:
            for line in stream:
                self._lines.put(line.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, EOFError, ValueError):
            pass
        finally:
            self._lines.put(_EOF)

    def _pump_stderr(self, stream: Iterable[bytes]) -> None:
        try:
            for line in stream:
                self._stderr.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, EOFError, ValueError):
            pass

    def send_line(self, line: str) -> None:
        try:
            self._write((line + "\n").encode("utf-8"))
        except (OSError, EOFError, ValueError):
            raise DeviceError(
                f"device {self.device_name!r}: the agent is gone ({self.stderr_tail() or 'no stderr'})",
                device=self.device_name,
            ) from None

    def read_line(self, timeout_s: float | None) -> str | None:
        try:
            item = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise DeviceError(
                f"device {self.device_name!r}: no answer from the agent within {timeout_s:g} s",
                device=self.device_name,
            ) from None
        return None if item is _EOF else str(item)

    def stderr_tail(self) -> str:
        return " | ".join(list(self._stderr)[-5:])

    def close(self) -> None:
        self._close()
