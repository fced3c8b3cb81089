"""Inventories: the boards edgekit reaches, in TOML (`--inventory FILE`, default $EDGEKIT_HOME/devices.toml).

[[device]]
name = "pi4-lab-1"
host = "192.168.1.50"       # or a Host alias from ~/.ssh/config
port = 22
user = "pi"
key_file = "~/.ssh/id_ed25519"   # omit to use ssh-agent / default keys
profile = "raspberry-pi-4"
python = "python3"          # the board's interpreter
workdir = "~/.edgekit"      # agent, artifacts and lock live here
tags = ["lab", "pi4"]
host_key_policy = "strict"  # or "accept-new" (trust on first use, then pinned)
proxy_jump = "ops@bastion.lab:2222"   # optional; ProxyJump/ProxyCommand in ssh_config work too
ssh_config = "~/.ssh/config"          # where Host aliases are looked up
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.config import Field, Section, integer, read_toml, text, validate
from edgekit.core.errors import ConfigError
from edgekit.core.resources import edgekit_home

DEVICE_SCHEMA = Section(
    fields={
        "name": text("the device name", required=True),
        "host": text("host name, address or ~/.ssh/config alias", required=True),
        "port": integer("TCP port", minimum=1),
        "user": text("login user"),
        "key_file": text("private key path"),
        "profile": text("device profile name or .toml path"),
        "python": text("the board's Python interpreter"),
        "workdir": text("directory on the board"),
        "tags": Field((list,), "a list of tags", item_types=(str,)),
        "host_key_policy": text("", choices=("strict", "accept-new")),
        "known_hosts": text("known_hosts file"),
        "ssh_config": text("ssh_config file"),
        "proxy_jump": text("bastion(s): [user@]host[:port][,...]"),
        "connect_timeout_s": Field((int, float), "a number of seconds > 0", check=lambda v: v > 0),
    }
)
INVENTORY_SCHEMA = Section(
    fields={"device": Field((list,), "an array of [[device]] tables", item_types=(dict,))}
)


@dataclass(frozen=True)
class SshTarget:
    name: str
    host: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    profile: str = "generic-aarch64"
    python: str = "python3"
    workdir: str = "~/.edgekit"
    tags: tuple[str, ...] = field(default_factory=tuple)
    host_key_policy: str = "strict"
    known_hosts: str = "~/.ssh/known_hosts"
    ssh_config: str = "~/.ssh/config"
    proxy_jump: str | None = None
    connect_timeout_s: float = 10.0


def parse_jump_spec(spec: str) -> list[tuple[str | None, str, int | None]]:
    """ProxyJump's `[user@]host[:port][,...]` (also `ssh://` and `[v6addr]:port`) as (user, host, port)."""
    hops: list[tuple[str | None, str, int | None]] = []
    for raw in spec.split(","):
        part = raw.strip().removeprefix("ssh://")
        user, _, hostport = part.rpartition("@")
        host, port = hostport, ""
        if hostport.startswith("["):
            host, _, rest = hostport[1:].partition("]")
            port = rest.removeprefix(":")
        elif hostport.count(":") == 1:
            host, port = hostport.split(":")
        if not host or (port and not port.isdigit()):
            raise ConfigError(f"ProxyJump {spec!r}: cannot read the hop {raw.strip()!r} ([user@]host[:port])")
        hops.append((user or None, host, int(port) if port else None))
    return hops


def default_inventory_path() -> Path:
    return edgekit_home() / "devices.toml"


def parse_inventory(data: dict[str, Any], path: Path) -> dict[str, SshTarget]:
    validate(data, INVENTORY_SCHEMA, path)
    devices: dict[str, SshTarget] = {}
    for index, entry in enumerate(data.get("device", [])):
        validate(entry, DEVICE_SCHEMA, path, f"device[{index}]")
        name = entry["name"]
        if name in devices or name == "local":
            why = "reserved" if name == "local" else "a duplicate"
            raise ConfigError(f"{path}: device[{index}].name: {name!r} is {why}")
        if "proxy_jump" in entry:
            try:
                parse_jump_spec(entry["proxy_jump"])
            except ConfigError as exc:
                raise ConfigError(f"{path}: device[{index}].proxy_jump: {exc.message}") from None
        devices[name] = SshTarget(**{**entry, "tags": tuple(entry.get("tags", ()))})
    return devices


def load_inventory(path: Path | None) -> dict[str, SshTarget]:
    """The inventory's devices; a missing default inventory is simply empty."""
    if path is None:
        path = default_inventory_path()
        if not path.exists():
            return {}
    return parse_inventory(read_toml(path), path)
