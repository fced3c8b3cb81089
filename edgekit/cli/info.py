"""`edgekit devices ...`, `edgekit profiles ...`, `edgekit history`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from edgekit.cli.common import DeviceOption, InventoryOption, JsonOption, StoreOption, store_to_read
from edgekit.cli.output import fmt, print_json, stdout, verdict_text
from edgekit.core.errors import EXIT_DEVICE
from edgekit.core.profiles import list_profiles, load_profile
from edgekit.measure.facts import device_facts, doctor
from edgekit.transport.board import resolve_board
from edgekit.transport.devices import known_device_names, resolve_device

devices_app = typer.Typer(help="Devices: list them, read their facts.", no_args_is_help=True)
profiles_app = typer.Typer(help="Device profiles: board facts and budgets.", no_args_is_help=True)


@devices_app.command("list")
def devices_list(inventory: InventoryOption = None, as_json: JsonOption = False) -> None:
    """Known devices: `local` and every board in the inventory."""
    rows = [resolve_device(name, inventory).to_dict() for name in known_device_names(inventory)]
    if as_json:
        print_json(rows)
        return
    table = Table("device", "kind", "profile")
    for row in rows:
        table.add_row(row["name"], row["kind"], row["profile"])
    stdout.print(table)


@devices_app.command("facts")
def devices_facts(
    device: DeviceOption = "local", inventory: InventoryOption = None, as_json: JsonOption = False
) -> None:
    """What the device's agent reports: CPU, memory, runtimes, clocks, temperatures."""
    facts = device_facts(resolve_device(device, inventory))
    if as_json:
        print_json(facts)
        return
    table = Table("fact", "value", title=f"device {facts['device']}", title_justify="left")
    for key, value in facts.items():
        if key != "sensors":
            table.add_row(key, _show(value))
    for zone in facts["sensors"].get("thermal_zones") or []:
        table.add_row(f"thermal {zone.get('zone')} ({zone.get('type')})", f"{fmt(zone.get('temp_c'), 1)} °C")
    stdout.print(table)


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)


@devices_app.command("doctor")
def devices_doctor(
    device: DeviceOption = "local", inventory: InventoryOption = None, as_json: JsonOption = False
) -> None:
    """What the board has and lacks for edgekit, and the exact line that installs the rest."""
    report = doctor(resolve_board(device, inventory=inventory))
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table("item", "status", "detail", title=f"device {report.device}", title_justify="left")
        style = {"ok": "green", "missing": "bold red", "warn": "yellow"}
        for check in report.checks:
            table.add_row(check.item, f"[{style[check.status]}]{check.status}[/]", check.detail)
        stdout.print(table)
        if report.install:
            stdout.print(f"install what is missing on the board:\n  {report.install}", markup=False)
    if report.install:
        raise typer.Exit(EXIT_DEVICE)


@profiles_app.command("list")
def profiles_list(as_json: JsonOption = False) -> None:
    """Every profile (user profiles in $EDGEKIT_HOME/profiles shadow bundled ones)."""
    profiles = list_profiles()
    if as_json:
        print_json([p.to_dict() for p in profiles])
        return
    table = Table(
        box=box.SIMPLE,
        pad_edge=False,
        caption="RAM, RSS: MiB; p50, p90: ms. Details: edgekit profiles show NAME",
    )
    for column in ("profile", "arch", "CPUs", "RAM", "runtime", "int8", "p50", "p90", "RSS"):
        table.add_column(column, no_wrap=True)
    for p in profiles:
        limits = p.budget.limits
        table.add_row(
            p.name,
            p.facts.arch,
            str(p.facts.cores or "host"),
            str(p.facts.memory_mb or "host"),
            p.facts.runtime,
            p.facts.int8_scheme,
            *(
                f"{limits[k]:g}" if k in limits else "—"
                for k in ("latency_p50_ms", "latency_p90_ms", "peak_rss_mb")
            ),
        )
    stdout.print(table)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name or .toml path.")], as_json: JsonOption = False
) -> None:
    """One profile's facts, sensors, budgets and the sources of its numbers."""
    profile = load_profile(name)
    data = profile.to_dict()
    if as_json:
        print_json(data)
        return
    stdout.print(f"[bold]{profile.name}[/] — {profile.description}  ({profile.path})")
    for section in ("facts", "sensors", "budgets", "sources"):
        table = Table("key", "value", title=section, title_justify="left")
        for key, value in data[section].items():
            table.add_row(key, _show(value))
        stdout.print(table)


def history(
    model: Annotated[str | None, typer.Option(help="Only runs of this model name.")] = None,
    device: Annotated[str | None, typer.Option(help="Only runs on this device.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 20,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Stored runs, newest first."""
    results_store = store_to_read(store)
    try:
        runs = results_store.runs(device=device, model=model, limit=limit)
    finally:
        results_store.close()
    if as_json:
        print_json([run.result for run in runs])
        return
    table = Table("run", "when (UTC)", "device", "model", "p50 ms", "p90 ms", "peak RSS MiB", "verdict")
    for run in runs:
        latency, memory = run.result.latency_ms, run.result.memory
        peak = memory.peak_rss_bytes if memory is not None else None
        table.add_row(
            run.run_id[:12],
            run.created_at[:19].replace("T", " "),
            run.device,
            run.model,
            fmt(latency.p50),
            fmt(latency.p90),
            fmt(peak / 1048576 if peak is not None else None, 1),
            verdict_text(run.verdict),
        )
    stdout.print(table if runs else "no stored runs match")
