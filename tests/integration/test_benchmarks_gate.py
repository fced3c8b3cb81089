"""benchmarks/gate.py runs end to end at tiny counts (real bench runs on `local`, the in-process
`compare` and `report`, the synthetic section) and prints its table. A smoke test: the figures
at these counts mean nothing and are not checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_gate_benchmark_prints_its_table() -> None:
    proc = subprocess.run(
        [
            sys.executable, "benchmarks/gate.py", "--sections", "stored,history,simulate",
            "--pairs", "1", "--history", "0", "--step-runs", "1", "--simulate-trials", "2",
        ],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| section | figure | goal | measured |")
    sections = {row.split("|")[1].strip() for row in rows[2:]}
    assert sections == {"1 stored", "4 history", "6 simulated"}, proc.stdout
    assert "1 of 1 insufficient-data (history < 8 runs)" in proc.stdout  # 1 pair: no history yet
