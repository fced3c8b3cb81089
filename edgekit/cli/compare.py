"""`edgekit compare BASELINE CANDIDATE` and `edgekit check RESULT [--baseline REF]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from edgekit.cli.common import InventoryOption, JsonOption, StoreOption, store_from_option
from edgekit.cli.output import ProgressPrinter, print_json, print_result, stderr, stdout
from edgekit.core.errors import EXIT_BUDGET, EXIT_OK, EXIT_USAGE, UsageError
from edgekit.judge.compare import Comparison, compare, parse_thresholds
from edgekit.judge.fingerprint import COMPARABLE_KEYS
from edgekit.judge.paired import look_schedule
from edgekit.store.references import load_reference

REFERENCE_HELP = (
    "A result .json, a stored run id (or unique prefix), or latest:DEVICE:MODEL[:N]; "
    "with --device: an .onnx/.tflite model or an artifact directory, measured now."
)
ThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="Smallest change to catch, percent: '5' for every metric or 'latency_p50_ms=3'. Default 5.",
    ),
]
IgnoreOption = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore-difference",
        help=f"Compare although this fingerprint key differs (one of {', '.join(COMPARABLE_KEYS)}).",
    ),
]
_STYLE = {
    "regression": "bold red",
    "improvement": "bold green",
    "unchanged": "",
    "insufficient-data": "yellow",
}


def _format(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric.endswith("_bytes"):
        return f"{value / 2**20:.2f} MiB"
    return f"{value:.4f}"


def comparison_table(comparison: Comparison, ci_label: str = "95% CI", caption: str | None = None) -> Table:
    table = Table(
        title=f"compare: {comparison.verdict}", title_justify="left", caption=caption, caption_justify="left"
    )
    for column in ("metric", "baseline", "candidate", "change", ci_label, "p", "verdict", "why"):
        table.add_column(
            column, justify="right" if column in ("baseline", "candidate", "change", "p") else "left"
        )
    for m in comparison.metrics:
        ci = f"[{m.ci95[0]:+.1%}, {m.ci95[1]:+.1%}]" if m.ci95 else "—"
        table.add_row(
            m.metric,
            _format(m.metric, m.baseline),
            _format(m.metric, m.candidate),
            f"{m.change:+.1%}" if m.change is not None else "—",
            ci,
            f"{m.p_value:.2g}" if m.p_value is not None else "—",
            f"[{_STYLE.get(m.verdict, '')}]{m.verdict}[/]" if _STYLE.get(m.verdict) else m.verdict,
            escape(m.reason),
        )
    return table


def _ignore(keys: list[str] | None) -> set[str]:
    unknown = sorted(set(keys or []) - set(COMPARABLE_KEYS))
    if unknown:
        raise typer.BadParameter(
            f"unknown fingerprint key(s) {', '.join(unknown)}", param_hint="--ignore-difference"
        )
    return set(keys or [])


def _report(comparison: Comparison, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        print_json({**(extra or {}), "comparison": comparison.to_dict()})
        return
    if not comparison.comparable:
        stderr.print("edgekit: these runs are not comparable:", markup=False)
        for reason in comparison.not_comparable_reasons:
            stderr.print(f"  - {reason}", markup=False)
        stderr.print("  (--ignore-difference KEY compares them anyway)", markup=False)
        return
    stdout.print(comparison_table(comparison))


def _exit_code(comparison: Comparison) -> int:
    if not comparison.comparable:
        return EXIT_USAGE
    return EXIT_BUDGET if comparison.verdict == "regression" else EXIT_OK


def _compare_on_device(
    baseline: str,
    candidate: str,
    device: str,
    inventory: Path | None,
    rounds: int,
    round_seconds: float,
    threads: int | None,
    thresholds: dict[str, float],
    ignore: set[str],
    store: str | None,
    as_json: bool,
) -> None:
    from edgekit.measure.ab import AbOptions, ab_compare
    from edgekit.measure.bench import BenchOptions
    from edgekit.transport.board import resolve_board

    board = resolve_board(device, inventory=inventory)
    results_store = store_from_option(store)  # opened first: a bad store fails before the device
    try:
        ab = ab_compare(
            Path(baseline).expanduser(),
            Path(candidate).expanduser(),
            board,
            BenchOptions(threads=threads),
            AbOptions(rounds=rounds, round_seconds=round_seconds),
            thresholds,
            ignore,
            on_event=ProgressPrinter(enabled=True),
        )
        results_store.add_run(ab.measurement.baseline)
        results_store.add_run(ab.measurement.candidate)
    finally:
        results_store.close()
    comparison, sequential, measurement = ab.comparison, ab.sequential, ab.measurement
    if as_json:
        print_json(ab.to_dict())
    elif comparison.comparable and sequential is not None:
        caption = (
            f"A/B {measurement.ab_id[:12]} on {device}: verdict after {sequential.rounds_used} of "
            f"{measurement.planned} round pairs ({'stopped early, ' if sequential.stopped_early else ''}"
            f"{measurement.duration_s:.1f} s timed, {measurement.wall_s:.1f} s with loads, "
            f"looks at {look_schedule(measurement.planned)}), "
            f"latency = Hodges-Lehmann change of the round-pair ratios; runs "
            f"{measurement.baseline.run_id} vs {measurement.candidate.run_id}"
        )
        stdout.print(comparison_table(comparison, f"{sequential.level:.1%} CI", escape(caption)))
    else:
        _report(comparison, False)
    raise typer.Exit(_exit_code(comparison))


def compare_command(
    baseline: Annotated[str, typer.Argument(help=REFERENCE_HELP)],
    candidate: Annotated[str, typer.Argument(help=REFERENCE_HELP)],
    threshold: ThresholdOption = None,
    ignore_difference: IgnoreOption = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            "-d",
            help="Measure both models now on this device, interleaved (A/B) in one agent session.",
        ),
    ] = None,
    inventory: InventoryOption = None,
    rounds: Annotated[
        int,
        typer.Option(
            help="With --device: round pairs (ABBA) at most; judged at 4 evenly spaced looks, "
            "stopping at the first that decides."
        ),
    ] = 20,
    round_seconds: Annotated[
        float, typer.Option(help="With --device: each round times at least this long, s.")
    ] = 0.2,
    threads: Annotated[
        int | None, typer.Option(help="With --device: intra-op threads (default: profile's).")
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per metric: the change, its interval and a verdict. Exit 1 on a regression, 2 when the runs
    are not comparable (different governor, clocks, runtime, threads, throttling) or on bad input.

    Stored results: latency on the runs' block medians (Mann-Whitney p, 95% bootstrap CI). With
    --device: both models are measured now, loaded once in one process and timed in alternating
    rounds (ABBA); latency is the Hodges-Lehmann median of the per-round-pair log-ratios with its
    Wilcoxon interval, judged at 4 looks with O'Brien-Fleming alpha spending (edgekit/judge/paired.py);
    memory from a separate short bench per side. Both runs are stored with a shared A/B id."""
    thresholds = parse_thresholds(threshold or [])
    ignore = _ignore(ignore_difference)
    if device is None:
        given = [name for name, value, default in (
            ("--rounds", rounds, 20), ("--round-seconds", round_seconds, 0.2), ("--threads", threads, None),
            ("--inventory", inventory, None)) if value != default]  # fmt: skip
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --device (a comparison measured now)")
    else:
        _compare_on_device(
            baseline, candidate, device, inventory, rounds, round_seconds, threads, thresholds, ignore,
            store, as_json,
        )  # fmt: skip
    results_store = store_from_option(store)
    try:
        base = load_reference(baseline, results_store)
        cand = load_reference(candidate, results_store)
    finally:
        results_store.close()
    comparison = compare(base, cand, thresholds, ignore)
    _report(comparison, as_json)
    raise typer.Exit(_exit_code(comparison))


def check_command(
    result: Annotated[str, typer.Argument(help=REFERENCE_HELP)],
    baseline: Annotated[str | None, typer.Option(help=f"Also gate on regressions. {REFERENCE_HELP}")] = None,
    threshold: ThresholdOption = None,
    ignore_difference: IgnoreOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The result's budget verdict, and with --baseline the regression gate. Exit 0 ok, 1 budget
    failure or regression, 2 input error or not comparable."""
    thresholds = parse_thresholds(threshold or [])
    ignore = _ignore(ignore_difference)
    results_store = store_from_option(store)
    try:
        candidates = load_reference(result, results_store)
        base = load_reference(baseline, results_store) if baseline else None
    finally:
        results_store.close()
    budget_failed = any(r.budget.verdict == "fail" for r in candidates)
    comparison = compare(base, candidates, thresholds, ignore) if base else None
    if as_json:
        print_json(
            {
                "budget": [r.budget.to_dict() for r in candidates],
                "comparison": comparison.to_dict() if comparison else None,
            }
        )
    else:
        for candidate in candidates:
            print_result(candidate)
        if comparison:
            _report(comparison, False)
    if budget_failed:
        raise typer.Exit(EXIT_BUDGET)
    raise typer.Exit(_exit_code(comparison) if comparison else EXIT_OK)
