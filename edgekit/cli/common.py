"""Options and helpers shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.resources import default_store_path
from edgekit.store import SqliteStore, open_store

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Results store (SQLite file). Default: $EDGEKIT_HOME/results.sqlite."),
]
DeviceOption = Annotated[
    str, typer.Option("--device", "-d", help="Device name (see 'edgekit devices list').")
]


def store_from_option(store: str | None) -> SqliteStore:
    return open_store(store if store else default_store_path())


def existing_path(value: str) -> Path:
    return Path(value).expanduser()


InventoryOption = Annotated[
    Path | None,
    typer.Option("--inventory", help="Devices TOML (default: $EDGEKIT_HOME/devices.toml)."),
]
