"""report: reports of stored runs — the data in scope (`data`, `cells`), static HTML with plots
(`html`, `plots` via matplotlib, `style`), a Markdown summary (`markdown`), OpenMetrics text
(`openmetrics`), and the page of an optimize search (`optimize_page`).

May import: `edgekit.core`, `edgekit.judge`, `edgekit.store`, `edgekit.optimize` (for its page).
"""

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
