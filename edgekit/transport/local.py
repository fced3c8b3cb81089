"""The `local` device: the agent zipapp (edgekit/transport/agent_bundle.py) runs as a subprocess
of this machine's Python, exactly as it runs on a board."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from edgekit.core.artifacts import Artifact
from edgekit.core.errors import DeviceError
from edgekit.core.resources import edgekit_home
from edgekit.transport.agent_bundle import build_agent_bundle
from edgekit.transport.base import StagedFile
from edgekit.transport.lines import QueuedLineChannel


def _write(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    process.stdin.write(data)
    process.stdin.flush()


def _close(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_process_channel(argv: list[str], device_name: str) -> QueuedLineChannel:
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise DeviceError(
            f"device {device_name!r}: cannot start the agent ({argv[0]}): {exc.strerror}", device=device_name
        ) from None
    assert process.stdout is not None and process.stderr is not None
    return QueuedLineChannel(
        device_name,
        process.stdout,
        process.stderr,
        lambda data: _write(process, data),
        lambda: _close(process),
    )


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
        argv = [self._python, str(build_agent_bundle().path), "--workdir", str(edgekit_home())]
        # One machine, one lock, whatever EDGEKIT_HOME each caller has (pytest-xdist workers,
        # two terminals): two benchmarks on `local` never overlap.
        argv += ["--lock-file", str(Path(tempfile.gettempdir()) / f"edgekit-local-{os.getuid()}.lock")]
        if self._sysfs_root is not None:
            argv += ["--sysfs-root", str(self._sysfs_root)]
        if self._procfs_root is not None:
            argv += ["--procfs-root", str(self._procfs_root)]
        return argv

    def start_agent(self) -> QueuedLineChannel:
        return start_process_channel(self.agent_argv(), self.device_name)

    def stage_file(self, path: Path, sha256: str) -> StagedFile:
        return StagedFile(str(path.resolve()), bytes_sent=0, skipped_cached=False, method="in-place")

    def stage_artifact(self, artifact: Artifact) -> StagedFile:
        """In place: the data files already sit next to the model, where its locations point."""
        return self.stage_file(artifact.path, artifact.sha256)

    def close(self) -> None:
        return None
