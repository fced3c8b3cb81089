"""Does one run's p50 interval contain the next run's p50? Back-to-back `edgekit bench` runs of
the demo model on `local`, with the rounds/processes default and with one process of one round
(the window as it was before rounds: its interval is the sample-level bootstrap).

For each run it keeps the new interval (round medians, edgekit.judge.stats.summarize_rounds) and
the sample-level one of the same samples (summarize_latencies' bootstrap), and counts over the
consecutive pairs how often run i's interval holds run i+1's p50. Also the wall time per bench.

    PYTHONPATH=. python3 benchmarks/bench_rounds.py --runs 10 [--json]   (from the repository root)

Writes nothing; EDGEKIT_HOME is a temporary directory that is removed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from typing import Any

import numpy as np

import edgekit.measure.bench as measure_bench
from edgekit.data import demo_model_path, demo_test_set_path
from edgekit.judge.stats import ns_to_ms, summarize_latencies
from edgekit.measure.bench import BenchOptions, run_bench
from edgekit.transport.board import resolve_board


def one_series(options: BenchOptions, count: int) -> dict[str, Any]:
    captured: list[list[int]] = []
    original = measure_bench.latency_section

    def capturing(latencies_ns: list[int], seed: int, rounds: Any = None) -> Any:
        captured.append(list(latencies_ns))
        return original(latencies_ns, seed, rounds)

    measure_bench.latency_section = capturing  # type: ignore[assignment]
    board = resolve_board("local")
    runs = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            result = run_bench(demo_model_path(), board, options)
            wall = time.perf_counter() - started
            old = summarize_latencies(ns_to_ms(captured[-1]), seed=options.seed).ci95["p50"]
            latency = result.latency_ms
            runs.append(
                {
                    "p50": latency.p50,
                    "new": latency.ci95["p50"],
                    "old": list(old) if old else None,
                    "round_spread_pct": latency.round_spread_pct,
                    "process_spread_pct": latency.process_spread_pct,
                    "wall_s": wall,
                }
            )
    finally:
        measure_bench.latency_section = original  # type: ignore[assignment]

    def holds(kind: str) -> float:
        pairs = list(itertools.pairwise(runs))
        return sum(a[kind][0] <= b["p50"] <= a[kind][1] for a, b in pairs) / len(pairs)

    return {
        "processes": options.processes,
        "rounds": options.resolved_rounds(),
        "next_p50_in_new_interval": holds("new"),
        "next_p50_in_old_interval": holds("old"),
        "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
        "p50_range_ms": [min(r["p50"] for r in runs), max(r["p50"] for r in runs)],
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["EDGEKIT_HOME"] = home
        inputs = demo_test_set_path()
        series = {
            "default": one_series(BenchOptions(inputs_file=inputs), args.runs),
            "one_process_one_round": one_series(
                BenchOptions(inputs_file=inputs, processes=1, rounds=1), args.runs
            ),
        }
    if args.json:
        print(json.dumps(series, indent=2))
        return
    for name, s in series.items():
        print(
            f"{name}: {s['processes']} x {s['rounds']} rounds; next run's p50 inside this run's interval: "
            f"new {s['next_p50_in_new_interval']:.0%}, sample-level {s['next_p50_in_old_interval']:.0%}; "
            f"p50 {s['p50_range_ms'][0]:.4f}-{s['p50_range_ms'][1]:.4f} ms; "
            f"median wall {s['median_wall_s']:.2f} s"
        )
        for r in s["runs"]:
            print(
                f"  p50 {r['p50']:.4f} new [{r['new'][0]:.4f}, {r['new'][1]:.4f}] "
                f"old [{r['old'][0]:.4f}, {r['old'][1]:.4f}] round ±{r['round_spread_pct'] or 0:.1f}% "
                f"process ±{r['process_spread_pct'] or 0:.1f}%"
            )


if __name__ == "__main__":
    main()
