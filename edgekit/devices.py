"""Device names -> how to reach them and which profile judges them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import UnknownDeviceError
from edgekit.transport.base import Transport
from edgekit.transport.local import LocalTransport

LOCAL = "local"


@dataclass(frozen=True)
class Device:
    name: str
    profile: str
    kind: str  # "local" (later: "ssh")
    sysfs_root: Path | None = None
    procfs_root: Path | None = None

    def transport(self) -> Transport:
        return LocalTransport(self.name, sysfs_root=self.sysfs_root, procfs_root=self.procfs_root)


def known_device_names() -> list[str]:
    return [LOCAL]


def resolve_device(name: str) -> Device:
    if name == LOCAL:
        return Device(name=LOCAL, profile="local", kind="local")
    known = known_device_names()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownDeviceError(f"unknown device {name!r}{hint}; known devices: {', '.join(known)}", device=name)
