"""The `local` device: the agent runs as a subprocess of this machine's Python."""

from __future__ import annotations

import collections
import contextlib
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from edgekit.errors import DeviceError
from edgekit.resources import agent_path
from edgekit.transport.base import StagedFile

_EOF = object()


class PipeChannel:
    """An agent subprocess; background threads drain stdout (to a queue) and stderr (to a tail)."""

    def __init__(self, argv: list[str], device_name: str) -> None:
        self.device_name = device_name
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        except OSError as exc:
            raise DeviceError(
                f"device {device_name!r}: cannot start the agent ({argv[0]}): {exc.strerror}",
                device=device_name,
            ) from None
        self._lines: queue.Queue[object] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        assert self._process.stdout is not None and self._process.stderr is not None
        threading.Thread(target=self._pump_stdout, args=(self._process.stdout,), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self._process.stderr,), daemon=True).start()

    def _pump_stdout(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(_EOF)

    def _pump_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr.append(line.rstrip("\n"))

    def send_line(self, line: str) -> None:
        stdin = self._process.stdin
        try:
            assert stdin is not None
            stdin.write(line + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
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
        process = self._process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LocalTransport:
    """Runs the agent here; files are read in place, so nothing is copied."""

    def __init__(
        self,
        device_name: str = "local",
        *,
        python: str | None = None,
        sysfs_root: Path | None = None,
        procfs_root: Path | None = None,
    ) -> None:
        self.device_name = device_name
        self._python = python or sys.executable
        self._sysfs_root = sysfs_root
        self._procfs_root = procfs_root

    def agent_argv(self) -> list[str]:
        argv = [self._python, str(agent_path())]
        if self._sysfs_root is not None:
            argv += ["--sysfs-root", str(self._sysfs_root)]
        if self._procfs_root is not None:
            argv += ["--procfs-root", str(self._procfs_root)]
        return argv

    def start_agent(self) -> PipeChannel:
        return PipeChannel(self.agent_argv(), self.device_name)

    def stage_file(self, path: Path, sha256: str) -> StagedFile:
        return StagedFile(str(path.resolve()), bytes_sent=0, skipped_cached=False, method="in-place")

    def close(self) -> None:
        return None
