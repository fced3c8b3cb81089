"""Agent memory: peak RSS of the agent's bench process minus a bare process on the same model.

    python benchmarks/agent_memory.py [--model M.onnx] [--reps 3]

Goal: <= 8 MB. Both load numpy + onnxruntime and the model and run it; the difference is what
the agent itself costs the measured process.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from agent_common import bare, default_model, through_agent

GOAL_BYTES = 8 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    model = args.model or default_model()
    deltas = []
    for rep in range(args.reps):
        agent_peak = through_agent(model, 1, 200, 0.5)["peak_rss_bytes"]
        bare_peak = bare(model, 1, 200, 0.5)["peak_rss_bytes"]
        deltas.append(agent_peak - bare_peak)
        print(
            f"rep {rep + 1}: agent bench process {agent_peak / 2**20:.1f} MiB, "
            f"bare {bare_peak / 2**20:.1f} MiB"
        )
    delta = statistics.median(deltas)
    print(
        f"model {model.name}: agent - bare peak RSS = {delta / 2**20:+.2f} MiB "
        f"(goal <= {GOAL_BYTES / 2**20:.0f} MiB)  {'OK' if delta <= GOAL_BYTES else 'OVER GOAL'}"
    )


if __name__ == "__main__":
    main()
