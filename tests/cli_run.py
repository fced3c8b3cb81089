"""Run the `edgekit` command as a user would: a real subprocess, no stdin, its own EDGEKIT_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "EDGEKIT_HOME": str(home), "COLUMNS": "200", **(env or {})},
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
