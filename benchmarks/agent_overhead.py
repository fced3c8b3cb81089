"""Agent overhead: p50 through the agent vs a bare onnxruntime loop, interleaved, one run.

    python benchmarks/agent_overhead.py [--model M.onnx] [--reps 7] [--min-seconds 2] [--threads 1]

Goal: ratio <= 1.03. Prints the per-repetition p50s and the ratio of their medians.
"""

from __future__ import annotations

import statistics

from agent_common import ab_arguments, bare, default_model, through_agent

GOAL = 1.03


def main() -> None:
    parser = ab_arguments(__doc__.splitlines()[0])
    args = parser.parse_args()
    model = args.model or default_model()
    agent_p50s, bare_p50s = [], []
    for rep in range(args.reps):
        # Alternate which goes first so drift on the shared machine hits both equally.
        order = (through_agent, bare) if rep % 2 == 0 else (bare, through_agent)
        for measure in order:
            p50 = measure(model, args.threads, 100, args.min_seconds)["p50_ms"]
            (agent_p50s if measure is through_agent else bare_p50s).append(p50)
        print(f"rep {rep + 1}: agent p50 {agent_p50s[-1]:.4f} ms, bare p50 {bare_p50s[-1]:.4f} ms")
    ratio = statistics.median(agent_p50s) / statistics.median(bare_p50s)
    print(
        f"model {model.name}, threads {args.threads}, {args.reps} interleaved reps of {args.min_seconds:g} s"
    )
    print(
        f"median p50: agent {statistics.median(agent_p50s):.4f} ms, "
        f"bare {statistics.median(bare_p50s):.4f} ms"
    )
    print(f"agent/bare p50 ratio: {ratio:.3f}  (goal <= {GOAL})  {'OK' if ratio <= GOAL else 'OVER GOAL'}")


if __name__ == "__main__":
    main()
