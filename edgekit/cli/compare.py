"""`edgekit compare BASELINE CANDIDATE` and `edgekit check RESULT [--baseline REF]`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from edgekit.cli.common import JsonOption, StoreOption, store_from_option
from edgekit.cli.output import print_json, print_result, stderr, stdout
from edgekit.core.errors import EXIT_BUDGET, EXIT_OK, EXIT_USAGE
from edgekit.judge.compare import Comparison, compare, parse_thresholds
from edgekit.judge.fingerprint import COMPARABLE_KEYS
from edgekit.store.references import load_reference

REFERENCE_HELP = "A result .json, a stored run id (or unique prefix), or latest:DEVICE:MODEL[:N]."
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


def comparison_table(comparison: Comparison) -> Table:
    table = Table(title=f"compare: {comparison.verdict}", title_justify="left")
    for column in ("metric", "baseline", "candidate", "change", "95% CI", "p", "verdict", "why"):
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


def compare_command(
    baseline: Annotated[str, typer.Argument(help=REFERENCE_HELP)],
    candidate: Annotated[str, typer.Argument(help=REFERENCE_HELP)],
    threshold: ThresholdOption = None,
    ignore_difference: IgnoreOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per metric: the change, its 95% CI, Mann-Whitney p and a verdict. Exit 1 on a regression,
    2 when the runs are not comparable (different governor, clocks, runtime, threads, throttling)."""
    thresholds = parse_thresholds(threshold or [])
    ignore = _ignore(ignore_difference)
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
