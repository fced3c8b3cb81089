"""Device names -> how to reach them and which profile judges them."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import UnknownDeviceError
from edgekit.transport.base import Transport
from edgekit.transport.inventory import SshTarget, load_inventory
from edgekit.transport.local import LocalTransport

LOCAL = "local"


@dataclass(frozen=True)
class Device:
    """How to reach one device. `profile` is the profile name (or .toml path) the inventory gives
    it; `edgekit.transport.board` pairs it with the loaded profile."""

    name: str
    profile: str
    kind: str  # "local" or "ssh"
    sysfs_root: Path | None = None
    procfs_root: Path | None = None
    ssh: SshTarget | None = None
    # A transport of your own (a test double from edgekit.testing.transport, an exotic link).
    transport_factory: Callable[[], Transport] | None = None

    def transport(self) -> Transport:
        if self.transport_factory is not None:
            return self.transport_factory()
        if self.ssh is not None:
            from edgekit.transport.ssh import SshTransport  # paramiko only when a board is used

            return SshTransport(self.ssh)
        return LocalTransport(self.name, sysfs_root=self.sysfs_root, procfs_root=self.procfs_root)

    def to_dict(self) -> dict[str, str]:
        """`{"name", "profile", "kind"}`: the row `edgekit devices list` shows."""
        return {"name": self.name, "profile": self.profile, "kind": self.kind}


def known_device_names(inventory: Path | None = None) -> list[str]:
    return [LOCAL, *load_inventory(inventory)]


def resolve_device(name: str, inventory: Path | None = None) -> Device:
    """`local` or a device of the inventory (default $EDGEKIT_HOME/devices.toml). Raises
    UnknownDeviceError (exit 2) for any other name, with the closest known name as a hint."""
    if name == LOCAL:
        return Device(name=LOCAL, profile="local", kind="local")
    devices = load_inventory(inventory)
    if name in devices:
        target = devices[name]
        return Device(name=name, profile=target.profile, kind="ssh", ssh=target)
    known = [LOCAL, *devices]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownDeviceError(f"unknown device {name!r}{hint}; known devices: {', '.join(known)}", device=name)
