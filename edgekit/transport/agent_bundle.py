"""The device agent as one file: a zipapp built reproducibly from the agent package's sources.

The same sources give the same bytes, hence the same sha256, on any host and any Python: the
members are the package's ``*.py`` files (never ``__pycache__`` or ``.pyc``) under
``edgekit_agent/`` plus a root ``__main__.py``, written in sorted name order, each dated
1980-01-01 00:00:00 (the earliest time a zip entry can hold), mode 0644, stored uncompressed
(ZIP_STORED: no zlib version can change the bytes), with no archive comment. Python runs a zip
whose root holds ``__main__.py`` (PEP 441): ``python3 agent-<sha256>.pyz``.

The built file is cached, named by its hash, under ``edgekit_home()/agent/`` (nothing is written
into the working directory); transports upload or run that file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import DeviceError
from edgekit.core.resources import agent_source_dir, edgekit_home

PACKAGE = "edgekit_agent"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--
# The zipapp's entry point: Python puts the .pyz first on sys.path, so the package imports from it.
ROOT_MAIN = b'''"""edgekit device agent (zipapp): python3 agent-<sha256>.pyz [options]."""
import sys

from edgekit_agent.__main__ import main

sys.exit(main())
'''


@dataclass(frozen=True)
class AgentBundle:
    """The built zipapp: where it is on this machine and the sha256 (hex) of its bytes."""

    path: Path
    sha256: str

    @property
    def name(self) -> str:
        """The name it has on a board: ``agent-<sha256>.pyz``."""
        return f"agent-{self.sha256}.pyz"


def agent_members(source_dir: Path) -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every member, sorted by name: the package's .py files and the
    root __main__.py. DeviceError when source_dir holds no agent package."""
    package = source_dir / PACKAGE
    if not (package / "__main__.py").is_file():
        raise DeviceError(f"the agent package is missing: no {package / '__main__.py'} (a broken install?)")
    members = [("__main__.py", ROOT_MAIN)]
    for path in package.rglob("*.py"):
        relative = path.relative_to(source_dir)
        if "__pycache__" in relative.parts:
            continue
        members.append((relative.as_posix(), path.read_bytes()))
    return sorted(members)


def bundle_bytes(source_dir: Path | None = None) -> bytes:
    """The zipapp's bytes for the agent sources under source_dir (default: the shipped ones)."""
    members = agent_members(source_dir or agent_source_dir())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def build_agent_bundle(source_dir: Path | None = None, cache_dir: Path | None = None) -> AgentBundle:
    """Build the zipapp and keep it as ``<cache_dir>/agent-<sha256>.pyz`` (default cache:
    ``edgekit_home()/agent``); an existing file with those bytes is reused as it is."""
    data = bundle_bytes(source_dir)
    digest = hashlib.sha256(data).hexdigest()
    directory = cache_dir or edgekit_home() / "agent"
    path = directory / f"agent-{digest}.pyz"
    try:
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            return AgentBundle(path, digest)
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except OSError:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DeviceError(f"cannot write the agent to {directory}: {exc.strerror or exc}") from None
    return AgentBundle(path, digest)
