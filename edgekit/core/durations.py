"""Durations as people type them: `90s`, `30m`, `12h`, `7d`, `2w` (a bare number is seconds)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration_s(text: str) -> float | None:
    """Seconds, or None when the text is not a duration."""
    match = _DURATION.match(text.strip().lower())
    return float(match.group(1)) * _SECONDS[match.group(2)] if match else None
