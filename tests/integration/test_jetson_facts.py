"""Jetson facts and GPU memory through the real agent on `local`: fake `nvpmodel`,
`jetson_clocks` and `tegrastats` first on PATH print the recorded outputs of
docs/reference/jetson-tools.md (the strings of tests/unit/test_jetson_tools.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgekit.testing.sensors import make_fake_tegrastats, make_fake_tool
from tests.cli_run import run_cli
from tests.unit.test_jetson_tools import (
    CLOCKS_JP6,
    CLOCKS_NOT_ROOT,
    CLOCKS_ON,
    NVPM_JP6,
    TEGRA_JP6,
    TEGRA_JP6_ROOT,
)

BENCH = [
    "--runs",
    "20",
    "--warmup",
    "1",
    "--min-seconds",
    "1.0",
    "--budget",
    "latency_p50_ms=10000",
    "--json",
]


def path_with(bin_dir: Path) -> dict[str, str]:
    return {"PATH": os.pathsep.join([str(bin_dir), os.environ["PATH"]])}


def test_bench_records_power_mode_clocks_and_unified_memory(mlp_model: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    make_fake_tool(bin_dir, "nvpmodel", {"q": NVPM_JP6})
    make_fake_tool(bin_dir, "jetson_clocks", {"show": CLOCKS_JP6})
    make_fake_tegrastats(bin_dir, [TEGRA_JP6, TEGRA_JP6_ROOT, TEGRA_JP6])  # RAM 2272, 3645, 2272 MB
    proc = run_cli("bench", str(mlp_model), *BENCH, home=tmp_path / "home", env=path_with(bin_dir))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    device, fingerprint = result["device"], result["fingerprint"]
    assert (device["power_mode"], device["power_mode_id"], device["jetson_clocks"]) == ("25W", 1, False)
    assert (fingerprint["power_mode"], fingerprint["jetson_clocks"]) == ("25W", False)
    gpu = result["memory"]["gpu_memory"]
    assert (gpu["peak_mb"], gpu["source"], gpu["scope"]) == (3645, "tegrastats", "system"), gpu
    assert gpu["samples"] >= 2
    assert (bin_dir / "tegrastats.args").read_text().split() == ["--interval", "100"]
    # the summary shows it next to the memory line
    shown = run_cli("bench", str(mlp_model), *BENCH[:-1], home=tmp_path / "home", env=path_with(bin_dir))
    assert "GPU peak 3645 MB (tegrastats, system)" in shown.stdout, shown.stdout


def test_clocks_on_changes_the_fingerprint_and_not_root_is_unknown(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    make_fake_tool(bin_dir, "nvpmodel", {"q": NVPM_JP6})
    make_fake_tool(bin_dir, "jetson_clocks", {"show": CLOCKS_ON})
    facts = json.loads(run_cli("devices", "facts", "--json", home=tmp_path, env=path_with(bin_dir)).stdout)
    assert (facts["power_mode"], facts["jetson_clocks"]) == ("25W", True)
    # not root: jetson_clocks prints only its error line and exits 1
    make_fake_tool(bin_dir, "jetson_clocks", {}, failure=CLOCKS_NOT_ROOT.strip())
    proc = run_cli("devices", "facts", "--json", home=tmp_path, env=path_with(bin_dir))
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert (facts["power_mode"], facts["power_mode_id"], facts["jetson_clocks"]) == ("25W", 1, None)


def test_without_jetson_tools_the_facts_and_gpu_memory_are_null(mlp_model: Path, tmp_path: Path) -> None:
    proc = run_cli("bench", str(mlp_model), *BENCH, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [result["device"][k] for k in ("power_mode", "power_mode_id", "jetson_clocks")] == [None] * 3
    assert result["fingerprint"]["power_mode"] is None
    assert result["memory"]["gpu_memory"] is None  # no tegrastats, no pynvml here
