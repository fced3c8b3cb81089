"""The CSS shared by edgekit's HTML pages (the report and optimize's page), inlined in each."""

from __future__ import annotations

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
h3 { font-size: 14px; margin: 16px 0 4px; }
.meta { color: #666; font-size: 12px; }
.counts span { display: inline-block; margin-right: 18px; font-size: 14px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td:nth-child(-n+3) { text-align: left; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #d62728; font-weight: bold; }
.unknown { color: #9a6700; } .regression { color: #d62728; font-weight: bold; }
.improvement { color: #1a7f37; } .suspect { color: #9a6700; }
svg.plot { display: block; margin: 6px 0 14px; border: 1px solid #eee; }
.empty { color: #666; font-style: italic; }
"""
