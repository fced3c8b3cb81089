"""The Transport protocol: start the agent on a device and put files where it can read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgekit.core.artifacts import Artifact


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

    def stage_file(self, path: Path, sha256: str) -> StagedFile:
        """One file (an inputs file, say) where the agent can read it, reused by `sha256`."""
        ...

    def stage_artifact(self, artifact: Artifact) -> StagedFile:
        """The artifact's model file and its external data files, the data files next to the model
        under the names its `location`s give; `remote_path` is the model file's path on the device,
        `bytes_sent` the sum over the files, `skipped_cached` true when none had to be sent."""
        ...

    def close(self) -> None: ...
