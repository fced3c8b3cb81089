"""A bare onnxruntime loop, the baseline the agent is measured against (run as a script).

    python benchmarks/bare_onnxruntime.py MODEL --threads 1 --runs N --min-seconds S

Feeds the same inputs the agent generates (N(0, 1) floats from default_rng(seed)), times each
run with perf_counter_ns, and prints one JSON line: p50 in ms and peak RSS (VmHWM) in bytes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def vm_hwm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(args.seed)
    feeds = {}
    for item in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in item.shape]
        feeds[item.name] = rng.standard_normal(shape).astype(np.float32)
    names = [o.name for o in session.get_outputs()]
    for _ in range(args.warmup + 1):
        session.run(names, feeds)
    latencies = []
    start = time.perf_counter_ns()
    min_ns = int(args.min_seconds * 1e9)
    while True:
        t0 = time.perf_counter_ns()
        session.run(names, feeds)
        t1 = time.perf_counter_ns()
        latencies.append(t1 - t0)
        if len(latencies) >= args.runs and t1 - start >= min_ns:
            break
    print(
        json.dumps(
            {
                "p50_ms": float(np.median(latencies)) / 1e6,
                "n": len(latencies),
                "peak_rss_bytes": vm_hwm_bytes(),
            }
        )
    )


if __name__ == "__main__":
    main()
