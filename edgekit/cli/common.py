"""Options and helpers shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.compress.fidelity import OUTPUT_KINDS
from edgekit.core.resources import default_store_path
from edgekit.store.base import ResultsStore
from edgekit.store.open import open_store

STORE_ENV = "EDGEKIT_STORE"  # a team points every command at its PostgreSQL store once
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        show_envvar=False,
        help="Results store: a SQLite file or a postgresql://user@host:port/db URL. "
        f"Default: ${STORE_ENV}, else $EDGEKIT_HOME/results.sqlite.",
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", "-d", help="Device name (see 'edgekit devices list').")
]


def store_location(store: str | None) -> str | Path:
    return store if store else default_store_path()


def store_from_option(store: str | None) -> ResultsStore:
    return open_store(store_location(store))


def existing_path(value: str) -> Path:
    return Path(value).expanduser()


InventoryOption = Annotated[
    Path | None,
    typer.Option("--inventory", help="Devices TOML (default: $EDGEKIT_HOME/devices.toml)."),
]

OutputKindOption = Annotated[
    list[str] | None,
    typer.Option(
        "--output-kind",
        help=f"NAME=KIND ({'|'.join(OUTPUT_KINDS)}): how to judge an output; only scores get top-1.",
    ),
]
