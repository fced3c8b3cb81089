"""The static HTML report: one self-contained file (inline CSS and SVG, no script, no fonts or
images fetched), so it reads the same offline, attached to a CI job, or served from a file share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape

from edgekit import __version__
from edgekit.core.result import Result
from edgekit.judge.budgets import MIB
from edgekit.report import cells
from edgekit.report.data import History, ReportData, TradeOff, base_model_of, created_at, recipe_of
from edgekit.report.plots import (
    DistributionRow,
    HistoryPoint,
    HistorySeries,
    Point,
    distribution_plot,
    history_plot,
    scatter_plot,
)
from edgekit.report.style import STYLE


def render_html(report: ReportData) -> str:
    body = [
        "<h1>edgekit report</h1>",
        f'<p class="meta">{escape(report.scope)} · generated {escape(_stamp(report.generated_at))} '
        f"· edgekit {escape(__version__)}</p>",
        _counts(report),
    ]
    if not report.runs:
        body.append(f'<p class="empty">No stored runs match ({escape(report.scope)}).</p>')
    else:
        body += [
            "<h2>Latest run of each model and recipe</h2>",
            _table(cells.headings(cells.SUMMARY_COLUMNS), [_summary_row(r) for r in report.latest]),
            "<h2>Regressions</h2>",
            _regressions(report),
            "<h2>Latency distributions</h2>",
            *_distributions(report),
            "<h2>Trade-offs of recipes: size, latency, accuracy</h2>",
            *_trade_off_plots(report.trade_offs),
            "<h2>History</h2>",
            *_history_plots(report.histories),
            "<h2>All runs in scope</h2>",
            _table(
                cells.headings(cells.RUN_COLUMNS),
                [_run_row(r) for r in reversed(report.runs)],
            ),
        ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>edgekit report — {escape(report.scope)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _counts(report: ReportData) -> str:
    items = [
        ("runs", len(report.runs), ""),
        ("devices", len(report.devices), ""),
        ("regressions", len(report.regressions), "regression" if report.regressions else ""),
        ("over budget", len(report.budget_failures), "fail" if report.budget_failures else ""),
    ]
    spans = "".join(f'<span class="{css}"><b>{count}</b> {label}</span>' for label, count, css in items)
    return f'<p class="counts">{spans}</p>'


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _tr(values: Sequence[str], css: dict[int, str] | None = None, title: str = "") -> str:
    chosen = css or {}
    tds = "".join(
        f'<td class="{chosen[i]}">{escape(v)}</td>' if i in chosen else f"<td>{escape(v)}</td>"
        for i, v in enumerate(values)
    )
    attribute = f' title="{escape(title)}"' if title else ""
    return f"<tr{attribute}>{tds}</tr>"


def _summary_row(result: Result) -> str:
    values = cells.row(result, cells.SUMMARY_COLUMNS)
    budget_index = cells.headings(cells.SUMMARY_COLUMNS).index("budget")
    css = {budget_index: values[budget_index]}
    suspect = cells.suspect_reasons(result)
    if suspect:
        values[budget_index] += " (suspect)"
        css[budget_index] += " suspect"
    return _tr(values, css, title="; ".join(suspect))


def _run_row(result: Result) -> str:
    values = cells.row(result, cells.RUN_COLUMNS)
    budget_index = cells.headings(cells.RUN_COLUMNS).index("budget")
    return _tr(values, {budget_index: values[budget_index]})


def _regressions(report: ReportData) -> str:
    if not report.regressions:
        return '<p class="empty">No regressions: every run is unchanged, better, or not comparable.</p>'
    rows = []
    for history in report.histories:
        for entry in history.regressions:
            rows.append(
                _tr(
                    [
                        history.device,
                        history.model,
                        entry.result.created_at[:16].replace("T", " "),
                        str(entry.baseline_run_id or "")[:12],
                        (entry.result.run_id or "")[:12],
                        entry.reason,
                    ],
                    {5: "regression"},
                )
            )
    return _table(["device", "model", "when (UTC)", "baseline run", "run", "why"], rows)


def _distributions(report: ReportData) -> list[str]:
    plots = []
    for device in report.devices:
        rows = []
        for result in (r for r in report.latest if r.device.name == device):
            latency = result.latency_ms
            histogram = latency.histogram
            quantiles = {"p50": latency.p50, "p90": latency.p90, "p99": latency.p99}
            markers = {k: float(v) for k, v in quantiles.items() if v is not None}
            rows.append(
                DistributionRow(
                    label=f"{base_model_of(result)} [{recipe_of(result)}]",
                    edges=histogram.edges_ms if histogram else [],
                    counts=histogram.counts if histogram else [],
                    markers=markers,
                    low=float(latency.min),
                    high=float(latency.max),
                )
            )
        if rows:
            plots.append(distribution_plot(rows, f"{device}: latency per inference", "ms"))
    return plots or ['<p class="empty">No latency samples in scope.</p>']


def _trade_off_plots(points: Sequence[TradeOff]) -> list[str]:
    plots = []
    for device in sorted({p.device for p in points}):
        mine = [p for p in points if p.device == device]
        sized = [p for p in mine if p.size_bytes is not None and p.latency_p50_ms is not None]
        if sized:
            plots.append(
                scatter_plot(
                    [
                        Point(p.size_bytes / MIB, p.latency_p50_ms, p.recipe, p.base_model, _quality(p))
                        for p in sized
                        if p.size_bytes is not None and p.latency_p50_ms is not None
                    ],
                    f"{device}: size vs latency",
                    "artifact size (MiB)",
                    "p50 latency (ms)",
                )
            )
        accurate = [p for p in sized if p.accuracy is not None]
        if accurate:
            plots.append(
                scatter_plot(
                    [
                        Point(p.latency_p50_ms, 100 * p.accuracy, p.recipe, p.base_model, _quality(p))
                        for p in accurate
                        if p.latency_p50_ms is not None and p.accuracy is not None
                    ],
                    f"{device}: accuracy vs latency",
                    "p50 latency (ms)",
                    "accuracy on eval data (%)",
                    y_from_zero=False,
                )
            )
    if not plots:
        return ['<p class="empty">No sized runs in scope.</p>']
    if not any(p.accuracy is not None for p in points):
        plots.append(
            '<p class="empty">No accuracy: artifacts made by '
            "<code>edgekit compress --eval</code> carry it.</p>"
        )
    return plots


def _quality(point: TradeOff) -> str:
    parts = []
    if point.accuracy is not None:
        parts.append(f"accuracy {100 * point.accuracy:.2f}%")
    if point.accuracy_drop_points is not None:
        parts.append(f"drop {point.accuracy_drop_points:.2f} points")
    if point.top1_agreement is not None:
        parts.append(f"top-1 agreement {100 * point.top1_agreement:.1f}%")
    if point.energy_mj is not None:
        parts.append(f"{point.energy_mj:.3g} mJ/inference")
    return "(" + ", ".join(parts) + ")" if parts else ""


def _history_plots(histories: Sequence[History]) -> list[str]:
    plots = []
    for device in sorted({h.device for h in histories}):
        series = [_history_series(h) for h in histories if h.device == device]
        series = [s for s in series if s.points]
        if not series:
            continue
        times = sorted({p.t for s in series for p in s.points})
        picks = times if len(times) <= 5 else [times[round(i * (len(times) - 1) / 4)] for i in range(5)]
        labels = {t: datetime.fromtimestamp(t, timezone.utc).strftime(_time_format(times)) for t in picks}
        plots.append(history_plot(series, f"{device}: p50 latency over time", "p50 latency (ms)", labels))
    return plots or ['<p class="empty">No history in scope.</p>']


def _time_format(times: Sequence[float]) -> str:
    span_s = times[-1] - times[0]
    return "%Y-%m-%d" if span_s > 3 * 86400 else "%m-%d %H:%M" if span_s > 3600 else "%H:%M:%S"


def _history_series(history: History) -> HistorySeries:
    points = []
    for entry in history.entries:
        latency = entry.result.latency_ms
        if latency.p50 is None:
            continue
        interval = latency.ci95.get("p50") or [None, None]
        mark = entry.verdict if entry.verdict in ("regression", "improvement", "not-comparable") else ""
        points.append(
            HistoryPoint(
                t=created_at(entry.result).timestamp(),
                y=float(latency.p50),
                low=interval[0],
                high=interval[1],
                mark=mark,
                detail=f"ms, run {(entry.result.run_id or '')[:12]}: {entry.verdict} ({entry.reason})",
            )
        )
    return HistorySeries(history.model, tuple(points))
