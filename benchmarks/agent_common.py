"""Shared by the agent benchmarks: one bench through the agent, one bare loop, same settings."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.onnx_model import graph_inputs, load_onnx
from edgekit.transport.agent_client import AgentClient
from edgekit.transport.local import LocalTransport

BARE = Path(__file__).with_name("bare_onnxruntime.py")


def through_agent(
    model: Path,
    threads: int,
    runs: int,
    min_seconds: float,
    sysfs_root: Path | None = None,
    extra_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    inputs = {
        i.name: {"shape": [d if isinstance(d, int) else 1 for d in i.dims], "dtype": i.dtype}
        for i in graph_inputs(load_onnx(model))
    }
    transport = LocalTransport(sysfs_root=sysfs_root)
    client = AgentClient(transport.start_agent(), "local")
    try:
        client.hello()
        raw = client.bench(
            {
                "artifact": str(model),
                "threads": threads,
                "warmup": 10,
                "runs": runs,
                "min_seconds": min_seconds,
                "inputs": inputs,
                "seed": 0,
                **(extra_params or {}),
            }
        )
    finally:
        client.close()
    return {
        "p50_ms": float(np.median(raw["latencies_ns"])) / 1e6,
        "n": len(raw["latencies_ns"]),
        "peak_rss_bytes": raw["memory"]["peak_rss_bytes"],
        "energy": raw.get("energy"),
    }


def bare(model: Path, threads: int, runs: int, min_seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(BARE),
            str(model),
            "--threads",
            str(threads),
            "--runs",
            str(runs),
            "--min-seconds",
            str(min_seconds),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def default_model() -> Path:
    from edgekit.data import demo_model_path

    return demo_model_path()


def ab_arguments(description: str) -> argparse.ArgumentParser:
    """The options every interleaved A/B agent benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    return parser
