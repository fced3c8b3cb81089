"""Inventories: the boards edgekit reaches, in TOML (`--inventory FILE`, default $EDGEKIT_HOME/devices.toml).

[[device]]
name = "pi4-lab-1"
host = "192.168.1.50"       # or a Host alias from ~/.ssh/config
port = 22
user = "pi"
key_file = "~/.ssh/id_ed25519"   # omit to use ssh-agent / default keys
passphrase_env = "PI_KEY_PASSPHRASE"  # if key_file is encrypted: the variable holding its passphrase
profile = "raspberry-pi-4"
python = "python3"          # the board's interpreter
workdir = "~/.edgekit"      # agent, artifacts and lock live here
tags = ["lab", "pi4"]
host_key_policy = "strict"  # or "accept-new" (trust on first use, then pinned)
proxy_jump = "ops@bastion.lab:2222"   # optional; ProxyJump/ProxyCommand in ssh_config work too
ssh_config = "~/.ssh/config"          # where Host aliases are looked up
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from edgekit.core.config import (
    ConfigModel,
    integer,
    json_schema,
    number,
    one_of,
    read_toml,
    text,
    validate_model,
)
from edgekit.core.errors import ConfigError
from edgekit.core.resources import edgekit_home

HostKeyPolicy = Literal["strict", "accept-new"]
RESERVED_NAMES = ("local",)  # the host itself, never an inventory device
MAX_PORT = 65535  # TCP ports are 16-bit, 0 is not dialable


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
        if not host or (port and not (port.isdigit() and 1 <= int(port) <= MAX_PORT)):
            raise ConfigError(
                f"ProxyJump {spec!r}: cannot read the hop {raw.strip()!r} ([user@]host[:port], port 1-65535)"
            )
        hops.append((user or None, host, int(port) if port else None))
    return hops


class SshTarget(ConfigModel):
    """One [[device]] table: a board reached over SSH. None = ssh_config / OpenSSH decides."""

    name: str = text(
        "the device name", default=..., json_schema_extra={"not": {"enum": list(RESERVED_NAMES)}}
    )
    host: str = text("host name, address or ~/.ssh/config alias", default=...)
    port: int | None = integer("TCP port", minimum=1, maximum=MAX_PORT)
    user: str | None = text("login user")
    key_file: str | None = text("private key path; absent = ssh-agent and the default keys")
    passphrase_env: str | None = text(
        "environment variable that holds key_file's passphrase; edgekit never prompts"
    )
    profile: str = text("device profile name or .toml path", default="generic-aarch64")
    python: str = text("the board's Python interpreter", default="python3")
    workdir: str = text("directory on the board", default="~/.edgekit")
    tags: tuple[str, ...] = Field(default=(), strict=False, description="a list of tags")
    host_key_policy: HostKeyPolicy = one_of(get_args(HostKeyPolicy), default="strict")
    known_hosts: str = text("known_hosts file", default="~/.ssh/known_hosts")
    ssh_config: str = text("ssh_config file", default="~/.ssh/config")
    proxy_jump: str | None = text("bastion(s): [user@]host[:port][,...]")
    connect_timeout_s: float = number("seconds", above=True, default=10.0)

    @field_validator("proxy_jump")
    @classmethod
    def _readable_jump(cls, spec: str | None) -> str | None:
        if spec is not None:
            try:
                parse_jump_spec(spec)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
        return spec


class Inventory(ConfigModel):
    """An inventory file: [[device]] tables with unique names ("local" is the host itself)."""

    device: list[SshTarget] = Field(default_factory=list, description="an array of [[device]] tables")

    @model_validator(mode="after")
    def _unique_names(self) -> Inventory:
        seen: set[str] = set()
        for index, target in enumerate(self.device):
            if target.name in seen or target.name in RESERVED_NAMES:
                why = "reserved" if target.name in RESERVED_NAMES else "a duplicate"
                raise ValueError(f"device[{index}].name: {target.name!r} is {why}")
            seen.add(target.name)
        return self


def inventory_json_schema() -> dict[str, Any]:
    """The JSON Schema of an inventory TOML file (docs/schema/inventory.schema.json)."""
    return json_schema(
        Inventory,
        title="edgekit inventory",
        description="The boards edgekit reaches over SSH ($EDGEKIT_HOME/devices.toml or --inventory FILE).",
    )


def default_inventory_path() -> Path:
    return edgekit_home() / "devices.toml"


def parse_inventory(data: dict[str, Any], path: Path) -> dict[str, SshTarget]:
    """Validate a parsed inventory TOML: device name -> target, in file order.

    Raises ConfigError (one line naming `path`, e.g. `device[0].port`) for anything Inventory rejects.
    """
    return {target.name: target for target in validate_model(Inventory, data, path).device}


def load_inventory(path: Path | None) -> dict[str, SshTarget]:
    """The inventory's devices; a missing default inventory is simply empty."""
    if path is None:
        path = default_inventory_path()
        if not path.exists():
            return {}
    return parse_inventory(read_toml(path), path)
