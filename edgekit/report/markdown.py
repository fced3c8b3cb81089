"""A Markdown summary for CI comments (GitHub, GitLab): counts, regressions first, then the
latest run of each model and recipe. Short on purpose: the HTML report has the plots."""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.report import cells
from edgekit.report.data import ReportData


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_escape(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_escape(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(report: ReportData) -> str:
    lines = [
        "## edgekit report",
        "",
        f"{report.scope}: **{len(report.runs)}** runs on **{len(report.devices)}** devices, "
        f"**{len(report.regressions)}** regressions, **{len(report.budget_failures)}** over budget.",
        "",
    ]
    if not report.runs:
        return "\n".join([*lines, "No stored runs match.", ""])
    if report.regressions:
        lines += ["### :red_circle: Regressions", ""]
        rows = [
            [
                h.device,
                h.model,
                (e.result.run_id or "")[:12],
                str(e.baseline_run_id or "")[:12],
                e.reason,
            ]
            for h in report.histories
            for e in h.regressions
        ]
        lines += [*_table(["device", "model", "run", "baseline run", "why"], rows), ""]
    lines += ["### Latest runs", ""]
    rows = []
    for result in report.latest:
        values = cells.row(result, cells.SUMMARY_COLUMNS)
        budget_index = cells.headings(cells.SUMMARY_COLUMNS).index("budget")
        if values[budget_index] == "fail":
            values[budget_index] = "**fail**"
        if cells.suspect_reasons(result):
            values[budget_index] += " (suspect: " + "; ".join(cells.suspect_reasons(result)) + ")"
        rows.append(values)
    lines += [*_table(cells.headings(cells.SUMMARY_COLUMNS), rows), ""]
    return "\n".join(lines)
