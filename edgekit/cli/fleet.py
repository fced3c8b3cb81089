"""`edgekit fleet run PLAN.toml`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edgekit.cli.common import JsonOption, StoreOption, store_location
from edgekit.cli.fleet_progress import FleetProgress
from edgekit.cli.output import print_json, stderr, stdout, verdict_text
from edgekit.core.errors import EXIT_BUDGET, EXIT_DEVICE, EXIT_OK, EXIT_USAGE
from edgekit.core.result import FleetCell
from edgekit.core.runlock import plan_lock_path, run_lock
from edgekit.measure.fleet import load_plan, run_plan
from edgekit.store.location import mask_password

fleet_app = typer.Typer(help="Run benchmark plans across many devices.", no_args_is_help=True)


@fleet_app.command("run")
def fleet_run(
    plan_path: Annotated[Path, typer.Argument(help="Plan TOML: models x recipes x devices.")],
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
    with (
        run_lock(plan_lock_path(plan_path), f"plan {plan.name!r}", wait_lock),
        FleetProgress(len(plan.devices), len(plan.cells)) as progress,
    ):
        fleet_run = run_plan(plan, location, progress, fresh=fresh)
    outcomes = fleet_run.outcomes
    if fleet_run.resumed:
        stderr.print(
            f"resumed plan run {fleet_run.plan_run_id}: {fleet_run.skipped_cells} cell(s) were already done",
            markup=False,
        )
    failed_devices = [o.device for o in outcomes if o.failed]
    verdicts = [r.budget.verdict for o in outcomes for r in o.results]
    if as_json:
        print_json(
            {
                "plan": plan.name,
                "plan_run_id": fleet_run.plan_run_id,
                "resumed": fleet_run.resumed,
                "skipped_cells": fleet_run.skipped_cells,
                "devices": {
                    o.device: {
                        "failed": o.failed,
                        "errors": o.errors,
                        "runs": [r.run_id for r in o.results],
                    }
                    for o in outcomes
                },
            }
        )
    else:
        table = Table(
            "device",
            "model",
            "recipe",
            "p50 ms",
            "verdict",
            title=f"plan {escape(plan.name)}",
            title_justify="left",
        )
        for outcome in outcomes:
            device = escape(outcome.device)
            for result in outcome.results:
                fleet, p50 = result.fleet or FleetCell(), result.latency_ms.p50
                table.add_row(
                    device,
                    escape(Path(fleet.model or "").name),
                    escape(fleet.recipe or ""),
                    f"{p50:.3f}" if p50 else "—",
                    verdict_text(result.budget.verdict),
                )
            for error in outcome.errors:
                table.add_row(
                    device, escape(error["cell"]), "", "—", f"[bold red]ERROR[/] {escape(error['error'])}"
                )
        stdout.print(table)
    errors = sum(len(o.errors) for o in outcomes)
    stderr.print(
        f"plan {plan.name} run {fleet_run.plan_run_id}: {len(outcomes)} device(s), "
        f"{sum(len(o.results) for o in outcomes)} new result(s), {errors} error(s), "
        f"{len(failed_devices)} failed device(s); stored in {mask_password(location)}",
        markup=False,
    )
    if failed_devices:
        stderr.print(
            f"edgekit: device(s) failed: {', '.join(failed_devices)}; other results kept", markup=False
        )
        raise typer.Exit(EXIT_DEVICE)
    if any(o.errors for o in outcomes):
        raise typer.Exit(EXIT_USAGE)  # a model or recipe the devices could not take
    raise typer.Exit(EXIT_BUDGET if "fail" in verdicts else EXIT_OK)
