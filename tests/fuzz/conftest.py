"""The fuzz suite: print how many cases each test generated (tests/fuzz/harness.py CASES)."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import CASES, OUTCOMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CASES:
        total = sum(CASES.values())
        terminalreporter.write_line(
            f"fuzz cases: {total} ({', '.join(f'{k} {v}' for k, v in CASES.items())})"
        )
        terminalreporter.write_line(
            "fuzz outcomes: " + ", ".join(f"{k} x{v}" for k, v in sorted(OUTCOMES.items()))
        )
