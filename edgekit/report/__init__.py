"""Reports of stored runs: static HTML with plots, a Markdown summary, OpenMetrics text."""

from edgekit.report.data import ReportData, ReportFilter, build_report, parse_since
from edgekit.report.html import render_html
from edgekit.report.markdown import render_markdown
from edgekit.report.openmetrics import render_openmetrics

FORMATS = {"html": render_html, "markdown": render_markdown, "openmetrics": render_openmetrics}

__all__ = [
    "FORMATS",
    "ReportData",
    "ReportFilter",
    "build_report",
    "parse_since",
    "render_html",
    "render_markdown",
    "render_openmetrics",
]
