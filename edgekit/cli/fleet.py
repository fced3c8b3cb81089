"""`edgekit fleet run PLAN.toml`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from edgekit.cli.common import JsonOption, StoreOption, UsageCommand, store_location
from edgekit.cli.fleet_progress import FleetProgress
from edgekit.cli.output import print_json, providers_cell, stderr, stdout, verdict_text
from edgekit.core.accelerators import AcceleratorRequest
from edgekit.core.errors import EXIT_BUDGET, EXIT_DEVICE, EXIT_OK, EXIT_USAGE
from edgekit.core.result import FleetCell
from edgekit.core.runlock import plan_lock_path, run_lock
from edgekit.measure.fleet import DeviceOutcome, FleetRun, Plan, load_plan, run_plan
from edgekit.store.location import mask_password
from edgekit.store.open import spool_of

fleet_app = typer.Typer(help="Run benchmark plans across many devices.", no_args_is_help=True)


@fleet_app.command("run", cls=UsageCommand)
def fleet_run(
    plan_path: Annotated[Path, typer.Argument(metavar="PLAN", help="Plan TOML: models x recipes x devices.")],
    store: StoreOption = None,
    max_parallel: Annotated[
        int | None,
        typer.Option(min=1, help="Devices worked on at once (default: the plan's max_parallel, else 32)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start over instead of resuming an interrupted run of this plan.")
    ] = False,
    wait_lock: Annotated[
        float, typer.Option(min=0, help="Seconds to wait if this plan is already running (default: fail).")
    ] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Concurrent across devices, serial on each; every device's results or errors are kept.
    Safe from cron: a second run of the same plan refuses to start (exit 2), and an interrupted run
    is resumed where it stopped."""
    plan = load_plan(plan_path)
    if max_parallel is not None:
        plan.max_parallel = max_parallel
    location = store_location(store)
    run = _run(plan_path, plan, location, fresh, wait_lock)
    if run.resumed:
        stderr.print(
            f"resumed plan run {run.plan_run_id}: {run.skipped_cells} cell(s) were already done",
            markup=False,
        )
    if as_json:
        print_json(_as_json(plan, run))
    else:
        stdout.print(_table(plan, run))
    _print_summary(plan, run, location, as_json)
    raise typer.Exit(_exit_code(run.outcomes))


def _run(plan_path: Path, plan: Plan, location: str | Path, fresh: bool, wait_lock: float) -> FleetRun:
    """Run the plan under its lock (one run of a plan at a time), showing progress on stderr."""
    with (
        run_lock(plan_lock_path(plan_path), f"plan {plan.name!r}", wait_lock),
        FleetProgress(len(plan.devices), len(plan.cells)) as progress,
    ):
        return run_plan(plan, location, progress, fresh=fresh)


def _as_json(plan: Plan, run: FleetRun) -> dict[str, Any]:
    return {
        "plan": plan.name,
        "plan_run_id": run.plan_run_id,
        "resumed": run.resumed,
        "skipped_cells": run.skipped_cells,
        "devices": {
            o.device: {
                "failed": o.failed,
                "errors": o.errors,
                "runs": [r.run_id for r in o.results],
            }
            for o in run.outcomes
        },
    }


def _table(plan: Plan, run: FleetRun) -> Table:
    """One row per new result and per error, device by device; when the plan asks for providers
    or a delegate, a column says which were asked for and what ran (output.providers_cell)."""
    accelerated = any(cell.accelerators != AcceleratorRequest() for cell in plan.cells)
    columns = ("device", "model", "recipe", *(("providers",) if accelerated else ()), "p50 ms", "verdict")
    table = Table(*columns, title=f"plan {escape(plan.name)}", title_justify="left")
    for outcome in run.outcomes:
        device = escape(outcome.device)
        for result in outcome.results:
            fleet, p50 = result.fleet or FleetCell(), result.latency_ms.p50
            table.add_row(
                device,
                escape(Path(fleet.model or "").name),
                escape(fleet.recipe or ""),
                *((escape(providers_cell(result.runtime)),) if accelerated else ()),
                f"{p50:.3f}" if p50 else "—",
                verdict_text(result.budget.verdict),
            )
        for error in outcome.errors:
            table.add_row(
                device,
                escape(error["cell"]),
                "",
                *(("",) if accelerated else ()),
                "—",
                f"[bold red]ERROR[/] {escape(error['error'])}",
            )
    return table


def _print_summary(plan: Plan, run: FleetRun, location: str | Path, as_json: bool) -> None:
    """The run's one summary line, then, when the exit code is not 0 or 1, the one
    `edgekit: error: …` line saying why (a failed device; else the cells that failed)."""
    outcomes = run.outcomes
    failed_devices = [o.device for o in outcomes if o.failed]
    errors = sum(len(o.errors) for o in outcomes)
    spooled = len(spool_of(location).files())
    where = f"stored in {mask_password(location)}"
    if spooled:  # the store stopped answering: the warnings above said so, once per write
        where += f", {spooled} write(s) spooled until it answers (edgekit store flush)"
    stderr.print(
        f"plan {plan.name} run {run.plan_run_id}: {len(outcomes)} device(s), "
        f"{sum(len(o.results) for o in outcomes)} new result(s), {errors} error(s), "
        f"{len(failed_devices)} failed device(s); {where}",
        markup=False,
    )
    if failed_devices:
        stderr.print(
            f"edgekit: error: device(s) failed: {', '.join(failed_devices)}; other results kept",
            markup=False,
        )
    elif errors:
        cells = len(plan.devices) * len(plan.cells) - run.skipped_cells
        where = "the JSON's errors" if as_json else "the table"
        stderr.print(f"edgekit: error: {errors} of {cells} cells failed (see {where})", markup=False)


def _exit_code(outcomes: list[DeviceOutcome]) -> int:
    """3 when a device failed or lacks a provider/delegate a cell asked for, else 2 when a model or
    recipe failed on a device, else 1 when a result is over budget, else 0."""
    if any(o.failed or any(e.get("exit") == "device" for e in o.errors) for o in outcomes):
        return EXIT_DEVICE
    if any(o.errors for o in outcomes):
        return EXIT_USAGE  # a model or recipe the devices could not take
    verdicts = [r.budget.verdict for o in outcomes for r in o.results]
    return EXIT_BUDGET if "fail" in verdicts else EXIT_OK
