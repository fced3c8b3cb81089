"""The Transport protocol: start the agent on a device and put files where it can read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class AgentChannel(Protocol):
    """A running agent: JSON lines in, JSON lines out."""

    def send_line(self, line: str) -> None: ...

    def read_line(self, timeout_s: float | None) -> str | None:
        """The next stdout line without its newline; None at end of stream. Raises on timeout."""
        ...

    def stderr_tail(self) -> str: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StagedFile:
    """A file as the agent sees it, and what it cost to get it there."""

    remote_path: str
    bytes_sent: int
    skipped_cached: bool
    method: str


class Transport(Protocol):
    device_name: str

    def start_agent(self) -> AgentChannel: ...

    def stage_file(self, path: Path, sha256: str) -> StagedFile: ...

    def close(self) -> None: ...
