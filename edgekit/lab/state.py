"""A board's state file, `$EDGEKIT_HOME/lab/<name>/state.json`: enough to stop it after a crash.

Written before anything is mounted or started and updated as the board comes up, so `lab down`
always knows the mounts, the sshd pid and the inventory entry it has to undo.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.atomic import write_text_atomic
from edgekit.core.errors import LabError

STATE_FILE = "state.json"
STATE_SCHEMA = 1


@dataclass
class LabState:
    name: str
    profile: str
    root: str  # the board's unpacked root filesystem
    inventory: str  # the inventory file holding its [[device]] entry
    status: str = "starting"  # starting | up
    port: int | None = None
    pid: int | None = None  # the chroot's sshd (its process tree is found by its root, see board.py)
    mounts: list[str] = field(default_factory=list)
    key_file: str | None = None
    known_hosts: str | None = None
    rootfs: str | None = None  # the cached tarball it was unpacked from
    started_at: float | None = None

    def to_json(self) -> str:
        return json.dumps({"schema": STATE_SCHEMA, **asdict(self)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, path: Path) -> LabState:
        try:
            data: dict[str, Any] = json.loads(text)
            data.pop("schema", None)
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise LabError(f"{path}: unreadable lab state ({exc})", path=str(path)) from None


def write_state(directory: Path, state: LabState) -> None:
    write_text_atomic(directory / STATE_FILE, state.to_json())


def read_state(directory: Path) -> LabState | None:
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    return LabState.from_json(path.read_text(), path)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
