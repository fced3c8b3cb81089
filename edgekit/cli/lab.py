"""`edgekit lab up|down|list`: emulated aarch64 boards (qemu user-mode) reachable over SSH on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgekit.cli.common import InventoryOption, JsonOption, UsageCommand
from edgekit.cli.output import print_json, stderr, stdout

lab_app = typer.Typer(
    help="Emulated ARM boards: an aarch64 Debian with its own sshd under qemu, for CI without hardware.",
    no_args_is_help=True,
)


class PhasePrinter:
    """Build and start-up phases as plain lines on stderr, each with the time since `lab up` began."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        stderr.print(f"[{time.monotonic() - self.started:6.1f} s] {line}", markup=False, highlight=False)


@lab_app.command("up", cls=UsageCommand)
def lab_up(
    profile: Annotated[
        str, typer.Argument(metavar="PROFILE", help="An aarch64 profile, e.g. raspberry-pi-4.")
    ],
    name: Annotated[str | None, typer.Option(help="Device name (default: PROFILE-emu).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port on 127.0.0.1, 1-65535 (default: a free one).")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="Private key to authorise (default: ~/.ssh/id_ed25519 or a lab key)."),
    ] = None,
    inventory: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build (once, then cached) and start an emulated board, and add it to the inventory.

    Needs root, qemu-user-static, debootstrap and binfmt_misc (exit 2 naming what is missing);
    exit 3 if the board does not start. Timings on it are labelled emulated, never judged."""
    from edgekit.lab.board import up

    progress = PhasePrinter()
    state = up(profile, name=name, port=port, inventory=inventory, key=key, progress=progress)
    if as_json:
        print_json({**vars(state), "seconds": round(time.monotonic() - progress.started, 1)})
    else:
        stdout.print(
            f"{state.name}: up on 127.0.0.1:{state.port} ({state.profile}, emulated aarch64); "
            f"try: edgekit devices doctor --device {state.name}"
            + (f" --inventory {inventory}" if inventory else ""),
            markup=False,
        )


@lab_app.command("down", cls=UsageCommand)
def lab_down(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The board's name.")],
    inventory: InventoryOption = None,
) -> None:
    """Stop a board: its processes, mounts, files and inventory entry (also after a crash)."""
    from edgekit.lab.board import down

    stopped = down(name, inventory)
    stdout.print(f"{name}: down" if stopped else f"{name}: no such lab board (nothing to do)", markup=False)


@lab_app.command("list")
def lab_list(as_json: JsonOption = False) -> None:
    """Lab boards with a state directory under $EDGEKIT_HOME/lab, running or left behind."""
    from edgekit.lab.board import boards

    rows = [b.to_dict() for b in boards()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "profile", "port", "status", "inventory")
    for row in rows:
        table.add_row(
            str(row["name"]), str(row["profile"]), str(row["port"]), str(row["status"]), str(row["inventory"])
        )
    stdout.print(table if rows else "no lab boards")
