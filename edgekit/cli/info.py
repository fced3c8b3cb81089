"""`edgekit devices ...`, `edgekit profiles ...`, `edgekit history`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from edgekit.cli.common import (
    DeviceOption,
    InventoryOption,
    JsonOption,
    StoreOption,
    UsageCommand,
    store_to_read,
)
from edgekit.cli.output import fmt, print_json, providers_cell, stdout, strict_hint, verdict_text
from edgekit.core.errors import EXIT_DEVICE
from edgekit.core.profiles import CONDITION_KEYS, list_profiles, load_profile
from edgekit.judge.budgets import unjudgeable_metrics
from edgekit.measure.facts import device_facts, doctor, unjudgeable_on
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
        reading = f"{fmt(zone.get('temp_c'), 1)} °C" if zone.get("temp_c") is not None else zone.get("reason")
        table.add_row(f"thermal {zone.get('zone')} ({zone.get('type')})", reading or "—")
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
        style = {"ok": "green", "missing": "bold red", "warn": "yellow", "absent": "dim"}
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


@profiles_app.command("show", cls=UsageCommand)
def profiles_show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Profile name or .toml path.")],
    device: Annotated[
        str | None,
        typer.Option(help="Also ask this device which budgets it cannot judge (e.g. no power sensor)."),
    ] = None,
    inventory: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """One profile's facts, sensors, budgets and the sources of its numbers, and the budgets that
    cannot be judged (on --device, or on any device when the profile names no power sensor)."""
    profile = load_profile(name)
    data = profile.to_dict()
    where = device or "any device"
    if device is not None:
        cannot = unjudgeable_on(resolve_board(device, inventory=inventory, profile=name))
    else:
        cannot = unjudgeable_metrics(
            profile.budget,
            device=where,
            emulated=False,
            power_problem=None if profile.sensors.power else "profile names no power sensor",
        )
    data["unjudgeable"] = {"device": device, "metrics": cannot}
    if as_json:
        print_json(data)
        return
    stdout.print(f"[bold]{profile.name}[/] — {profile.description}  ({profile.path})")
    for section in ("facts", "sensors", "budgets", "accelerators", "sources"):
        if section == "accelerators" and not data[section]:
            continue  # the runtime's defaults (CPU; TFLite's default delegates)
        table = Table("key", "value", title=section, title_justify="left")
        if section == "budgets":
            table.add_column(f"on {where}")
        for key, value in data[section].items():
            judged = [
                f"[yellow]cannot be judged[/]: {cannot[key]}"
                if key in cannot
                else "run condition"
                if key in CONDITION_KEYS
                else "judged"
            ]
            table.add_row(key, _show(value), *(judged if section == "budgets" else []))
        stdout.print(table)
    if cannot:
        stdout.print(strict_hint(where, cannot), soft_wrap=True)


def history(
    model: Annotated[str | None, typer.Option(help="Only runs of this model name.")] = None,
    device: Annotated[str | None, typer.Option(help="Only runs on this device.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs, newest first.")] = 20,
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
    # a providers column only when a run asked for or used something other than the CPU
    ran = [providers_cell(run.result.runtime) for run in runs]
    accelerated = any(text not in ("—", "cpu") for text in ran)
    columns = ("run", "when (UTC)", "device", "model", *(("providers",) if accelerated else ()))
    table = Table(*columns, "p50 ms", "p90 ms", "peak RSS MiB", "verdict")
    for run, providers in zip(runs, ran, strict=True):
        latency, memory = run.result.latency_ms, run.result.memory
        peak = memory.peak_rss_bytes if memory is not None else None
        table.add_row(
            run.run_id[:12],
            run.created_at[:19].replace("T", " "),
            run.device,
            run.model,
            *((escape(providers),) if accelerated else ()),
            fmt(latency.p50),
            fmt(latency.p90),
            fmt(peak / 1048576 if peak is not None else None, 1),
            verdict_text(run.verdict),
        )
    stdout.print(table if runs else "no stored runs match")
