"""`edgekit compare BASELINE CANDIDATE` and `edgekit check RESULT [--baseline REF]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from edgekit.cli.common import (
    InventoryOption,
    JsonOption,
    StoreOption,
    store_from_option,
    store_to_read,
    store_to_read_if_any,
)
from edgekit.cli.output import ProgressPrinter, print_json, print_result, stderr, stdout
from edgekit.core.errors import EXIT_BUDGET, EXIT_OK, EXIT_USAGE, UsageError
from edgekit.core.result import Result
from edgekit.judge.compare import Comparison, compare, parse_thresholds, series_key, series_noise
from edgekit.judge.fingerprint import COMPARABLE_KEYS
from edgekit.judge.paired import look_schedule
from edgekit.report.data import HISTORY_WINDOW, HistoryEntry, histories
from edgekit.store.base import ResultsStore
from edgekit.store.references import load_reference, names_stored_runs

REFERENCE_HELP = (
    "A result .json (one result or a JSON list), a stored run id (or a unique prefix of >= 4 characters), "
    "or latest:DEVICE:MODEL[:N]; with --device: an .onnx/.tflite model or artifact directory, measured now."
)
ThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        metavar="PERCENT|METRIC=PERCENT",
        help="Smallest change to catch, percent: '5' for every metric or 'latency_p50_ms=3'. Default 5.",
    ),
]
IgnoreOption = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore-difference",
        metavar="KEY",
        help=f"Compare although this fingerprint key differs (one of {', '.join(COMPARABLE_KEYS)}).",
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Exit 1 on 'insufficient-data' too (too few runs, too short a history)."),
]
CheckStrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit 1 on 'insufficient-data' too, and when a budgeted metric is unknown (as bench --strict).",
    ),
]
HISTORY_LIMIT = 500  # stored runs of one device and model read to find a series' history
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
    if not comparison.comparable:
        stderr.print(not_comparable_error(comparison), markup=False)
        return
    if not as_json:
        stdout.print(comparison_table(comparison))


def not_comparable_error(comparison: Comparison) -> str:
    """The one error line for runs that are not comparable (exit 2): the reasons joined by '; '."""
    reasons = "; ".join(comparison.not_comparable_reasons)
    hint = "(--ignore-difference KEY compares them anyway)"
    return f"edgekit: error: these runs are not comparable: {reasons} {hint}"


def _exit_code(comparison: Comparison, strict: bool = False) -> int:
    if not comparison.comparable:
        return EXIT_USAGE
    if comparison.verdict == "regression":
        return EXIT_BUDGET
    latency = next((m for m in comparison.metrics if m.metric == "latency_p50_ms"), None)
    insufficient = latency is not None and latency.verdict == "insufficient-data"
    return EXIT_BUDGET if strict and insufficient else EXIT_OK


def series_history(store: ResultsStore | None, result: Result, limit: int = HISTORY_LIMIT) -> list[Result]:
    """The stored runs of result's series (edgekit.judge.compare.series_key), oldest first (none
    without a store)."""
    if store is None:
        return []
    key = series_key(result)
    stored = store.runs(device=result.device.name, model=result.model.name, limit=limit)
    return sorted((r.result for r in stored if series_key(r.result) == key), key=lambda r: r.created)


def _judged_in_history(
    store: ResultsStore | None, result: Result, thresholds: dict[str, float]
) -> HistoryEntry:
    """The run judged against the runs of its series stored before it (the report's gate), and
    confirmed or cleared by the series' next stored run when there is one (a run beyond the limit
    alone is "insufficient-data": edgekit.report.data)."""
    others = [r for r in series_history(store, result) if r.run_id != result.run_id]
    earlier = [r for r in others if r.created < result.created]
    later = [r for r in others if r.created >= result.created][:1]
    (history,) = histories([*earlier[-4 * HISTORY_WINDOW :], result, *later], thresholds)
    return next(e for e in history.entries if e.result is result)


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
    baseline: Annotated[str, typer.Argument(metavar="BASELINE", help=REFERENCE_HELP)],
    candidate: Annotated[str, typer.Argument(metavar="CANDIDATE", help=REFERENCE_HELP)],
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
    strict: StrictOption = False,
) -> None:
    """Per metric: the change, its interval and a verdict. Exit 1 on a regression (and on
    insufficient-data with --strict), 2 when the runs are not comparable (different governor,
    clocks, runtime, threads, throttling) or on bad input.

    Stored results: the unit is the run: each run's p50 is one observation; the change is the
    Hodges-Lehmann estimate of the log-ratio and its interval inverts the Mann-Whitney test (pool
    runs per side with latest:DEVICE:MODEL:N). With too few runs for that (e.g. 1 vs 1), the
    interval comes from the series' run-to-run noise measured on its stored history (same device,
    model, artifact and fingerprint; at least 8 runs); with a shorter history the verdict is
    'insufficient-data'. With --device: both models are measured now, loaded once in one process
    and timed in alternating rounds (ABBA); latency is the Hodges-Lehmann median of the
    per-round-pair log-ratios with its Wilcoxon interval, judged at 4 looks with O'Brien-Fleming
    alpha spending (edgekit/judge/paired.py); memory from a separate short bench per side; both
    runs are stored with a shared A/B id. Either way a regression needs an interval above zero and
    a change of at least half the threshold."""
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
    results_store = _store_to_read(store, baseline, candidate)
    try:
        base = load_reference(baseline, results_store)
        cand = load_reference(candidate, results_store)
        comparison = _compare(results_store, base, cand, thresholds, ignore)
    finally:
        if results_store is not None:
            results_store.close()
    _report(comparison, as_json)
    raise typer.Exit(_exit_code(comparison, strict))


def _store_to_read(store: str | None, *references: str | None) -> ResultsStore | None:
    """The store, read-only, for references that name stored runs ("no results store at ..." when
    there is none); for result files only, the store's history when there is one, else None."""
    if any(ref is not None and names_stored_runs(ref) for ref in references):
        return store_to_read(store)
    return store_to_read_if_any(store)


def _compare(
    store: ResultsStore | None,
    base: list[Result],
    cand: list[Result],
    thresholds: dict[str, float],
    ignore: set[str],
) -> Comparison:
    """compare() with the run-to-run noise of the baseline's series from the store's history."""
    exclude = {r.run_id or "" for r in cand}
    noise = series_noise(series_history(store, base[0]), exclude)
    return compare(base, cand, thresholds, ignore, noise=noise)


def check_command(
    result: Annotated[str, typer.Argument(metavar="RESULT", help=REFERENCE_HELP)],
    baseline: Annotated[str | None, typer.Option(help=f"Also gate on regressions. {REFERENCE_HELP}")] = None,
    threshold: ThresholdOption = None,
    ignore_difference: IgnoreOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
    strict: CheckStrictOption = False,
) -> None:
    """The result's budget verdict and a regression gate. With --baseline: `compare`'s gate
    (runs as observations, the series' run-to-run noise for 1 vs 1). Without it, each run is
    judged against the history of its series in the store (same device, model, artifact and
    fingerprint): robust z of its log p50 against the median of the last 20 runs before it,
    flagged beyond 4.5 and beyond half the threshold, as `report` does; with fewer than 8 earlier
    runs the verdict is 'insufficient-data'. Exit 0 ok, 1 budget failure or regression (or, with
    --strict, insufficient-data or a budgeted metric that could not be measured: verdict unknown,
    as `bench --strict`), 2 input error (a result file with no results in it) or not comparable."""
    thresholds = parse_thresholds(threshold or [])
    ignore = _ignore(ignore_difference)
    results_store = _store_to_read(store, result, baseline)
    try:
        candidates = load_reference(result, results_store)
        base = load_reference(baseline, results_store) if baseline else None
        comparison = _compare(results_store, base, candidates, thresholds, ignore) if base else None
        judged = [] if base else [_judged_in_history(results_store, r, thresholds) for r in candidates]
    finally:
        if results_store is not None:
            results_store.close()
    budget_failed = any(r.budget.verdict == "fail" for r in candidates) or (
        strict and any(r.budget.verdict == "unknown" for r in candidates)
    )
    if as_json:
        print_json(
            {
                "budget": [r.budget.to_dict() for r in candidates],
                "comparison": comparison.to_dict() if comparison else None,
                "history": [
                    {
                        "run_id": e.result.run_id,
                        "verdict": e.verdict,
                        "reason": e.reason,
                        "change": e.change,
                        "window_runs": e.window_runs,
                    }
                    for e in judged
                ],
            }
        )
    else:
        for candidate in candidates:
            print_result(candidate)
        if comparison:
            _report(comparison, False)
        for entry in judged:
            stdout.print(f"history: {entry.verdict}: {entry.reason}", markup=False)
    if budget_failed:
        raise typer.Exit(EXIT_BUDGET)
    if comparison:
        raise typer.Exit(_exit_code(comparison, strict))
    verdicts = {e.verdict for e in judged}
    failed = "regression" in verdicts or (strict and "insufficient-data" in verdicts)
    raise typer.Exit(EXIT_BUDGET if failed else EXIT_OK)
