"""`edgekit report`: stored runs as an HTML page with plots, a Markdown summary or OpenMetrics."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.common import JsonOption, StoreOption, store_to_read
from edgekit.cli.compare import ThresholdOption
from edgekit.cli.output import print_json, stderr
from edgekit.core.atomic import write_text_atomic
from edgekit.core.errors import EXIT_BUDGET, EXIT_OK, UsageError
from edgekit.judge.compare import parse_thresholds
from edgekit.report import FORMATS, ReportFilter, build_report, parse_since

SUFFIX_FORMATS = {
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".prom": "openmetrics",
    ".om": "openmetrics",
}


def report_format(chosen: str | None, output: Path | None) -> str:
    """--format wins; else the output file's suffix says; else Markdown on stdout."""
    if chosen is not None:
        if chosen not in FORMATS:
            raise UsageError(f"--format {chosen}: one of {', '.join(FORMATS)}")
        return chosen
    if output is None:
        return "markdown"
    suffix = output.suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise UsageError(
            f"-o {output}: cannot tell the format from {suffix or 'no suffix'!r}; "
            f"use .html, .md or .prom, or --format {'|'.join(FORMATS)}"
        )
    return SUFFIX_FORMATS[suffix]


def report_command(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (atomically); the suffix picks the format."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs since: a duration (7d, 12h, 30m, 2w) or a date.")
    ] = None,
    device: Annotated[
        list[str] | None, typer.Option("--device", "-d", metavar="DEVICE", help="Only this device (repeat).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", metavar="MODEL", help="Only this model (repeat).")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="html, markdown or openmetrics (default: from -o).")
    ] = None,
    threshold: ThresholdOption = None,
    limit: Annotated[int, typer.Option(help="Read at most this many stored runs, newest first.")] = 10000,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 1 when a run in scope is flagged as a regression, or a budget fails.",
        ),
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Report stored runs: HTML with plots (latency distributions, recipe trade-offs, history with
    regressions marked), a Markdown summary for CI comments, or OpenMetrics for Prometheus.

    History: a series is one device, model, artifact and comparable fingerprint (runtime providers
    included). Each run is judged against the last 20 runs of its series before it: robust z of
    its log p50 against their median and 1.4826 * MAD, flagged beyond 4.5 and beyond half the
    threshold. A step is flagged once, at the run where it happened; later runs are judged
    against a window that restarts at the step. With fewer than 8 earlier runs in its series a
    run is 'insufficient-data' (never flagged); a run under other conditions starts a new series.
    Runs before --since (among the newest --limit read) still serve as history."""
    chosen_format = report_format(fmt, output)
    now = datetime.now(timezone.utc)
    chosen = ReportFilter(
        since=parse_since(since, now) if since else None,
        devices=tuple(device or ()),
        models=tuple(model or ()),
    )
    thresholds = parse_thresholds(threshold or [])
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    results_store = store_to_read(store)
    try:
        only_device = chosen.devices[0] if len(chosen.devices) == 1 else None
        stored = results_store.runs(device=only_device, limit=limit)
    finally:
        results_store.close()
    report = build_report((run.result for run in stored), chosen, now, thresholds)
    text = FORMATS[chosen_format](report)
    summary = {
        "format": chosen_format,
        "output": str(output) if output else None,
        "scope": report.scope,
        "runs": len(report.runs),
        "devices": report.devices,
        "regressions": [
            {"device": h.device, "model": h.model, "run_id": e.result.run_id, "reason": e.reason}
            for h in report.histories
            for e in h.regressions
        ],
        "budget_failures": [r.run_id for r in report.budget_failures],
    }
    if output is not None:
        write_text_atomic(output, text)
        stderr.print(
            f"wrote {output} ({chosen_format}: {len(report.runs)} runs, {len(report.devices)} devices, "
            f"{len(summary['regressions'])} regressions)",
            markup=False,
        )
        if as_json:
            print_json(summary)
    elif as_json:
        print_json({**summary, "text": text})
    else:
        typer.echo(text, nl=False)
    failed = summary["regressions"] or summary["budget_failures"]
    raise typer.Exit(EXIT_BUDGET if strict and failed else EXIT_OK)
