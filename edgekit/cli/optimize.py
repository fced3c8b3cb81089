"""`edgekit optimize`: search compression recipes for the best artifact per board, by measurement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgekit.cli.common import InventoryOption, JsonOption, OutputKindOption, StoreOption, store_from_option
from edgekit.cli.output import fmt, print_json, stderr, stdout
from edgekit.compress import Recipe, parse_recipe
from edgekit.compress.fidelity import parse_output_kinds
from edgekit.core.accelerators import check_provider_names
from edgekit.core.atomic import write_text_atomic
from edgekit.core.durations import parse_duration_s
from edgekit.core.errors import EXIT_BUDGET, EXIT_DEVICE, EXIT_OK, UsageError
from edgekit.judge.budgets import MIB
from edgekit.measure.bench import BenchOptions
from edgekit.optimize.search import DeviceReport, OptimizeOptions, Search, optimize
from edgekit.optimize.state import BASELINE, REJECTED
from edgekit.report.optimize_page import front_page
from edgekit.store.base import ResultsStore
from edgekit.transport.board import Board, resolve_board


def _progress(event: dict[str, Any]) -> None:
    """One line per candidate and per outcome on stderr (stdout stays for the table or JSON)."""
    phase = event.get("phase")
    if phase == "candidate":
        stderr.print(f"{event['device']}: trying {event['candidate']}", markup=False)
    elif phase == "outcome":
        outcome = event["outcome"]
        stderr.print(
            f"{event['device']}: {outcome['name']}: {outcome['status']} ({outcome['reason']})", markup=False
        )
    elif phase == "confirm":
        stderr.print(
            f"{event['device']}: A/B of {event['candidate']} against float, interleaved", markup=False
        )
    elif phase == "training" and ("message" in event or "error" in event):
        stderr.print(f"{event['candidate']}: {event.get('message') or event.get('error')}", markup=False)
    elif phase == "time-budget":
        stderr.print(event["message"], markup=False)


def _table(report: DeviceReport) -> Table:
    table = Table(
        title=f"{report.device} ({report.profile}): chosen {report.chosen or '—'}", title_justify="left"
    )
    with_provider = any(o.provider for o in report.outcomes)
    # with providers: the share of the nodes an accelerator ran (runtime.placement), so a
    # candidate named after a provider that ran nothing shows as the CPU run it was
    provider_columns = ("provider", "accel. nodes") if with_provider else ()
    columns = ("", "candidate", *provider_columns, "status", "size MiB", "p50 ms")
    for column in (*columns, "speed-up", "acc. drop", "mJ/inf", "why"):
        table.add_column(
            column, justify="left" if column in ("", "candidate", "provider", "status", "why") else "right"
        )
    for o in report.outcomes:
        mark = "→" if o.name == report.chosen else ("★" if o.name in report.front else "")
        style = "dim" if o.status == REJECTED else ""
        table.add_row(
            mark,
            o.name,
            *((o.provider or "—", _fraction(o.accelerated_fraction)) if with_provider else ()),
            o.status + (" (front)" if o.name in report.front else ""),
            fmt(o.size_bytes / MIB if o.size_bytes is not None else None, 3),
            fmt(o.latency_p50_ms, 4),
            f"{o.speedup:.2f}x" if o.speedup else "—",
            fmt(o.accuracy_drop_points, 2),
            fmt(o.energy_mj, 3),
            o.reason,
            style=style,
        )
    return table


def _fraction(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _cpu_runs(report: DeviceReport) -> list[str]:
    """Candidates asked to run on an accelerator that ran none of their nodes."""
    return [
        o.name
        for o in report.outcomes
        if o.status != BASELINE and o.provider not in (None, "cpu") and o.accelerated_fraction == 0
    ]


def optimize_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="The float ONNX model.")],
    eval_data: Annotated[
        Path, typer.Option("--eval", help="Held-out .npz (inputs + 'labels'): judges every candidate.")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output directory (the search state lives here).")],
    device: Annotated[str, typer.Option("--device", "-d", help="Device name.")] = "local",
    devices: Annotated[
        str | None, typer.Option("--devices", help="Several devices, comma-separated: a pick per board.")
    ] = None,
    inventory: InventoryOption = None,
    calib: Annotated[
        Path | None, typer.Option(help="Calibration .npz (default: a seeded quarter of --eval).")
    ] = None,
    max_accuracy_drop: Annotated[float, typer.Option(help="Accuracy points a candidate may lose.")] = 1.0,
    time_budget: Annotated[
        str | None, typer.Option(help="Stop after this long (90s, 30m, 2h); the best so far is kept.")
    ] = None,
    objective: Annotated[str, typer.Option(help="latency, size or energy.")] = "latency",
    recipe: Annotated[
        list[str] | None,
        typer.Option(metavar="RECIPE", help="Try only these recipes (repeat); default: generated."),
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed inferences per candidate, at least.")] = 200,
    min_seconds: Annotated[float, typer.Option(help="Time each candidate at least this long.")] = 1.0,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads (default: profile's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed: data split, calibration, inputs.")] = 0,
    train_config: Annotated[
        Path | None,
        typer.Option(help="An `edgekit train` config: also try QAT and prune-and-fine-tune (train extra)."),
    ] = None,
    confirm: Annotated[
        int,
        typer.Option(
            help="Confirm the pick against float by an interleaved A/B run of at most this many round "
            "pairs (as `compare --device`; 0: off; fewer than 6 cannot decide)."
        ),
    ] = 12,
    fresh: Annotated[bool, typer.Option(help="Start over instead of resuming the search in -o.")] = False,
    output_kind: OutputKindOption = None,
    min_cosine: Annotated[
        float,
        typer.Option(
            help="Outputs that are not class scores (boxes, maps, embeddings): the least mean cosine "
            "to float a candidate needs to be picked (stricter than compress's 0.90 quality floor)."
        ),
    ] = 0.99,
    save: Annotated[bool, typer.Option("--store-results/--no-store", help="Keep every run.")] = True,
    shape: Annotated[
        list[str] | None,
        typer.Option(
            "--shape",
            metavar="NAME=AxBxC",
            help="NAME=AxBxC for an input the model leaves open (repeat), as for bench; "
            "default: taken from the --eval data.",
        ),
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            metavar="NAME",
            help="An onnxruntime execution provider to try candidates on (repeatable; the first runs "
            "the float reference): each candidate on each provider that takes it (docs/accelerators.md). "
            "A provider the device lacks: exit 3 before any candidate is made. Default: as bench.",
        ),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the smallest, fastest artifact that keeps the accuracy on each board, by measuring there.

    Tries compression recipes (int8 variants with sensitive-layer fallback, fp16, channel pruning,
    low-rank, chains), rejects those that lose more than --max-accuracy-drop or are slower than the
    float model on the device, keeps the Pareto front and writes the pick to OUT/DEVICE/best.
    Without labels, class-score outputs are judged by top-1 agreement with float, every other
    output by its mean cosine to float (--min-cosine); degraded candidates are rejected.
    Interrupted or out of time, the next run with the same -o resumes."""
    budget_s = _time_budget_s(time_budget)
    names = [d.strip() for d in devices.split(",") if d.strip()] if devices else [device]
    # unknown device names and profiles fail before any work
    targets = [resolve_board(name, inventory=inventory) for name in names]
    options = OptimizeOptions(
        model=model,
        eval=eval_data,
        out_dir=out,
        calib=calib,
        max_accuracy_drop=max_accuracy_drop,
        objective=objective,
        time_budget_s=budget_s,
        seed=seed,
        recipes=_recipes(recipe or []),
        bench=BenchOptions(
            runs=runs, min_seconds=min_seconds, threads=threads, seed=seed, shapes=tuple(shape or ())
        ),
        fresh=fresh,
        confirm_rounds=confirm,
        train_config=train_config,
        min_cosine=min_cosine,
        output_kinds=parse_output_kinds(output_kind or []),
        providers=check_provider_names(provider or []),
    )
    search, reports = _run(options, targets, store_from_option(store) if save else None)
    write_text_atomic(out / "report.html", front_page(reports, options.objective))
    if search.resumed:
        stderr.print(f"resumed the search in {out}", markup=False)
    stderr.print(f"{search.data.note}; report: {out / 'report.html'}", markup=False)
    if as_json:
        print_json(_result_dict(search, reports, options))
    else:
        _print_reports(reports)
    _print_notes(reports)
    _print_failure(reports, as_json)
    raise typer.Exit(_exit_code(reports))


def _time_budget_s(text: str | None) -> float | None:
    if text is None:
        return None
    seconds = parse_duration_s(text)
    if seconds is None:
        raise UsageError(f"--time-budget {text!r}: expected a duration like 90s, 30m or 2h")
    return seconds


def _recipes(texts: list[str]) -> tuple[Recipe, ...]:
    """Each --recipe is one candidate (a chain uses +); a bad one fails before any work."""
    return tuple(parse_recipe(text) for text in texts)


def _run(
    options: OptimizeOptions, targets: list[Board], results_store: ResultsStore | None
) -> tuple[Search, list[DeviceReport]]:
    try:
        return optimize(options, targets, results_store, on_event=_progress)
    finally:
        if results_store is not None:
            results_store.close()


def _print_reports(reports: list[DeviceReport]) -> None:
    several = len(reports) > 1
    for report in reports:
        if report.outcomes:  # a device that failed before its float model ran has no table
            stdout.print(_table(report))
        if report.error:
            if several:  # one device: its error is the `edgekit: error:` line (_print_failure)
                stderr.print(f"{report.device}: failed: {report.error}", markup=False)
        elif report.best_dir:
            stdout.print(f"{report.device}: {report.chosen} ({report.chosen_reason}) -> {report.best_dir}")


def _print_notes(reports: list[DeviceReport]) -> None:
    """A note line per device whose candidates' accelerator ran none of their nodes (stderr, with
    the table or the JSON)."""
    for report in reports:
        cpu_runs = _cpu_runs(report)
        if cpu_runs:
            where = f"{report.device}: " if len(reports) > 1 else ""
            stderr.print(
                f"note: {where}{', '.join(cpu_runs)}: the provider asked for ran none of the nodes "
                "(0% accelerated): CPU runs, kept off the front and the pick",
                markup=False,
            )


def _print_failure(reports: list[DeviceReport], as_json: bool) -> None:
    """When a device failed (exit 3), the one `edgekit: error: …` line that ends the output: the
    device's error itself, or with several devices how many failed (each said why above)."""
    failed = [r for r in reports if r.error]
    if not failed:
        return
    if len(reports) == 1:
        line = f"{failed[0].device}: {failed[0].error}"
    else:
        where = "the JSON's errors" if as_json else "above"
        names = ", ".join(r.device for r in failed)
        line = f"{len(failed)} of {len(reports)} device(s) failed: {names} (see {where}); other picks kept"
    stderr.print(f"edgekit: error: {line}", markup=False)


def _result_dict(search: Search, reports: list[DeviceReport], options: OptimizeOptions) -> dict[str, Any]:
    return {
        "search_id": search.search_id,
        "resumed": search.resumed,
        "out_of_time": search.out_of_time,
        "objective": options.objective,
        "data": search.data.note,
        "devices": {r.device: _report_dict(r) for r in reports},
    }


def _report_dict(report: DeviceReport) -> dict[str, Any]:
    return {
        "profile": report.profile,
        "chosen": report.chosen,
        "chosen_reason": report.chosen_reason,
        "best_dir": report.best_dir,
        "front": report.front,
        "error": report.error,
        "confirmation": report.confirmation,
        "candidates": [o.to_dict() for o in report.outcomes],
    }


def _exit_code(reports: list[DeviceReport]) -> int:
    if any(r.error for r in reports):
        return EXIT_DEVICE
    chosen = [next(o for o in r.outcomes if o.name == r.chosen) for r in reports if r.chosen]
    if any(o.budget_verdict == "fail" for o in chosen):
        return EXIT_BUDGET
    return EXIT_OK
