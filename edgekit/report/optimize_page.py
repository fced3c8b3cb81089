"""The search's page: per board, the measured candidates on size vs latency with the Pareto front
and the pick marked, and every candidate's outcome (why each was rejected)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from edgekit.judge.budgets import MIB
from edgekit.optimize.search import DeviceReport
from edgekit.report.plots import Point, scatter_plot
from edgekit.report.style import STYLE


def _series(report: DeviceReport, name: str, status: str) -> str:
    if name == report.chosen:
        return "chosen"
    if name in report.front:
        return "Pareto front"
    return "float" if status == "baseline" else status


def _plot(report: DeviceReport) -> str:
    points = [
        Point(
            o.size_bytes / MIB,
            o.latency_p50_ms,
            o.name,
            _series(report, o.name, o.status),
            f"(drop {o.accuracy_drop_points:.2f} points)" if o.accuracy_drop_points is not None else "",
        )
        for o in report.outcomes
        if o.size_bytes is not None and o.latency_p50_ms is not None
    ]
    if not points:
        return '<p class="empty">No candidate was measured on the device.</p>'
    return scatter_plot(
        points, f"{report.device}: candidates measured", "artifact size (MiB)", "p50 latency (ms)"
    )


def _rows(report: DeviceReport) -> str:
    rows = []
    for o in report.outcomes:
        cells = [
            o.name,
            o.status
            + (" · front" if o.name in report.front else "")
            + (" · chosen" if o.name == report.chosen else ""),
            "–" if o.size_bytes is None else f"{o.size_bytes / MIB:.3f}",
            "–" if o.latency_p50_ms is None else f"{o.latency_p50_ms:.4g}",
            "–" if o.speedup is None else f"{o.speedup:.2f}x",
            "–" if o.accuracy_drop_points is None else f"{o.accuracy_drop_points:.2f}",
            o.reason,
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("candidate", "status", "size MiB", "p50 ms", "speed-up", "drop", "why")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _confirmation(report: DeviceReport) -> str:
    c = report.confirmation
    if not c:
        return ""
    speedup = f"<b>{c['speedup']:.2f}x</b> float's p50" if c.get("speedup") else "no speed-up measured"
    return (
        f"<p>interleaved A/B ({c['rounds']} round pairs): {speedup} "
        f"({c['chosen_p50_ms'] or 0:.4g} vs {c['float_p50_ms'] or 0:.4g} ms; {escape(str(c['verdict']))}: "
        f"{escape(str(c['reason']))})</p>"
    )


def front_page(reports: Sequence[DeviceReport], objective: str) -> str:
    sections = []
    for report in reports:
        chosen = escape(report.chosen or "none")
        sections.append(
            f"<h2>{escape(report.device)} ({escape(report.profile)})</h2>"
            f"<p>chosen for {escape(objective)}: <b>{chosen}</b> — {escape(report.chosen_reason)}</p>"
            + (f'<p class="fail">device failed: {escape(report.error)}</p>' if report.error else "")
            + _confirmation(report)
            + _plot(report)
            + _rows(report)
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>edgekit optimize</title>'
        f"<style>{STYLE}</style></head><body><h1>edgekit optimize</h1>{''.join(sections)}</body></html>\n"
    )
