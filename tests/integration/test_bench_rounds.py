"""Rounds and processes on the real agent with the local device: the timed window spread over
fresh bench children, per-round medians with their pid, and the p50 interval over rounds."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgekit.judge.stats import ns_to_ms, summarize_latencies
from edgekit.lab.sysfs_tree import make_fake_sysfs
from edgekit.measure.bench import BenchOptions, latency_section
from tests.cli_run import run_cli
from tests.integration.test_agent_protocol import AgentProcess, bench_params

pytestmark = pytest.mark.integration


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu-thermal", 45000)], cpus=2))
    yield process
    process.process.kill()
    process.process.wait()


def test_two_processes_give_rounds_from_two_children(agent: AgentProcess, mlp_model: Path) -> None:
    params = bench_params(mlp_model, runs=60, min_seconds=0.6, processes=2, rounds=3)
    reply, events = agent.request({"id": 1, "op": "bench", "params": params})
    assert reply["ok"], reply
    raw = reply["result"]
    rounds = raw["rounds"]
    assert [r["process"] for r in rounds] == [0, 0, 0, 1, 1, 1]
    pids = {r["pid"] for r in rounds}
    assert len(pids) == 2 and agent.process.pid not in pids
    assert len({r["pid"] for r in rounds[:3]}) == 1
    assert sum(r["n"] for r in rounds) == len(raw["latencies_ns"])
    # each round: its share of runs (60 / 2 / 3 = 10) and of min_seconds (0.1 s)
    assert all(r["n"] >= 10 and r["duration_s"] >= 0.1 for r in rounds)
    starts = [r["started_unix"] for r in rounds]
    assert starts == sorted(starts)
    assert raw["processes"] == 2
    assert raw["window"]["duration_s"] >= 0.6
    assert {e.get("process") for e in events if e.get("phase") == "timed"} == {1, 2}

    latency = latency_section(raw["latencies_ns"], 0, rounds)
    assert latency.rounds is not None and len(latency.rounds) == 6
    medians = [r.median for r in latency.rounds]
    samples_ms = ns_to_ms(raw["latencies_ns"])
    offsets = np.cumsum([0] + [r["n"] for r in rounds])
    assert medians == [float(np.median(samples_ms[a:b])) for a, b in itertools.pairwise(offsets)]
    low, high = latency.ci95["p50"] or (math.nan, math.nan)
    assert low <= float(np.median(medians)) <= high
    old_low, old_high = summarize_latencies(samples_ms, seed=0).ci95["p50"] or (math.nan, math.nan)
    assert low <= old_low and high >= old_high  # never narrower than the sample-level interval
    assert latency.ci95_p50_method == "hull of order statistics of 6 round medians and the sample bootstrap"
    assert latency.round_spread_pct is not None and latency.process_spread_pct is not None
    assert latency.process_medians is not None and len(latency.process_medians) == 2


def test_a_reply_without_rounds_is_one_round(agent: AgentProcess, mlp_model: Path) -> None:
    """An older agent (no rounds in its reply) gives one round and the sample-level interval."""
    reply, _ = agent.request({"id": 1, "op": "bench", "params": bench_params(mlp_model, runs=40)})
    raw = reply["result"]
    assert [r["process"] for r in raw["rounds"]] == [0] and "processes" in raw  # defaults: 1 x 1
    latency = latency_section(raw["latencies_ns"], 0, None)
    old = summarize_latencies(ns_to_ms(raw["latencies_ns"]), seed=0).ci95["p50"]
    assert latency.ci95["p50"] == (list(old) if old else None)
    assert latency.ci95_p50_method == "sample bootstrap only (one round: no between-round spread observed)"


def test_bench_cli_processes_and_rounds(mlp_model: Path, tmp_path: Path) -> None:
    args = ["bench", str(mlp_model), "--runs", "40", "--warmup", "2", "--min-seconds", "0.4", "--no-store"]
    proc = run_cli(*args, "--processes", "2", "--rounds", "3", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["settings"]["processes"] == 2 and result["settings"]["rounds"] == 3
    assert len(result["latency_ms"]["rounds"]) == 6
    assert len({r["pid"] for r in result["latency_ms"]["rounds"]}) == 2
    human = run_cli(*args, "--processes", "1", home=tmp_path)
    assert human.returncode == 0, human.stderr
    # 0.4 s in one process: 1 automatic round of 0.25 s
    assert "(95% interval) over 1 round in 1 process" in human.stdout
    bad = run_cli(*args, "--processes", "0", home=tmp_path)
    assert bad.returncode == 2 and "--processes must be >= 1, got 0" in bad.stderr


def test_min_seconds_zero_gives_exactly_runs(agent: AgentProcess, mlp_model: Path) -> None:
    """runs split into integer shares that add up: 25 over 2 processes x 2 rounds = 7+6 and 6+6."""
    params = bench_params(mlp_model, runs=25, min_seconds=0.0, processes=2, rounds=2)
    reply, _ = agent.request({"id": 1, "op": "bench", "params": params})
    assert [r["n"] for r in reply["result"]["rounds"]] == [7, 6, 6, 6]
    assert len(reply["result"]["latencies_ns"]) == 25


def test_default_rounds() -> None:
    assert BenchOptions().resolved_rounds() == 4  # 2 s over 2 processes: rounds of 0.25 s
    assert BenchOptions(min_seconds=60).resolved_rounds() == 20
    assert BenchOptions(min_seconds=0).resolved_rounds() == 1
    assert BenchOptions(rounds=7).resolved_rounds() == 7
