"""The interleaved A/B gate (`edgekit compare --device local`) on real models on this machine:
false alarms, power and time to a verdict.

    python benchmarks/ab_gate.py [--repeats 40] [--tries 20] [--rounds 20] [--round-seconds 0.2]

- false alarms: `--repeats` A/B runs of the demo model against itself, and of a small MLP against
  itself; the share flagged "regression" (goal <= 5%);
- power: the MLP against a copy with 10% more hidden units (about 10% more multiply-adds), and
  with 50% more, `--tries` each; the share flagged (goal >= 90% for 10%, 100% for 50%);
- time to a verdict: the round pairs each verdict rested on, the seconds of timed rounds and the
  wall-clock seconds from the first `ab` request to the verdict (model loads included; medians),
  for every series, among them a ~20 ms MLP against a 10% heavier version of itself.
Every run goes through the real agent (op `ab`, edgekit/measure/ab.py) with the gate's defaults.
Models are written to a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from edgekit.data import demo_model_path
from edgekit.measure.ab import AbComparison, AbOptions, ab_compare
from edgekit.measure.bench import BenchOptions
from edgekit.testing.models import make_mlp
from edgekit.transport.board import resolve_board


def run(baseline: Path, candidate: Path, rounds: int, round_seconds: float) -> AbComparison:
    return ab_compare(
        baseline,
        candidate,
        resolve_board("local"),
        BenchOptions(),
        AbOptions(rounds=rounds, round_seconds=round_seconds),
    )


def latency(ab: AbComparison) -> tuple[str, float | None]:
    metric = next(m for m in ab.comparison.metrics if m.metric == "latency_p50_ms")
    return metric.verdict, metric.change


def series(name: str, baseline: Path, candidate: Path, count: int, args: argparse.Namespace) -> None:
    verdicts, changes, seconds, walls, rounds = [], [], [], [], []
    for _ in range(count):
        ab = run(baseline, candidate, args.rounds, args.round_seconds)
        verdict, change = latency(ab)
        verdicts.append(verdict)
        changes.append(change or 0.0)
        seconds.append(ab.measurement.duration_s)
        walls.append(ab.measurement.wall_s)
        rounds.append(ab.sequential.rounds_used if ab.sequential else 0)
    flagged = verdicts.count("regression") / count
    print(
        f"{name:<34} n={count:<3} flagged {flagged:6.1%}  median change {statistics.median(changes):+6.1%}  "
        f"verdict after {statistics.median(rounds):4.1f} pairs, {statistics.median(seconds):5.1f} s timed, "
        f"{statistics.median(walls):5.1f} s wall",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--round-seconds", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        mlp = make_mlp(tmp / "mlp.onnx", features=256, hidden=256, batch=32)
        mlp10 = make_mlp(tmp / "mlp10.onnx", features=256, hidden=282, batch=32)
        mlp50 = make_mlp(tmp / "mlp50.onnx", features=256, hidden=384, batch=32)
        big = make_mlp(tmp / "big.onnx", features=1024, hidden=2048, batch=256)
        big10 = make_mlp(tmp / "big10.onnx", features=1024, hidden=2253, batch=256)
        demo = demo_model_path()
        series("demo vs itself", demo, demo, args.repeats, args)
        series("mlp vs itself", mlp, mlp, args.repeats, args)
        series("mlp vs +10% hidden", mlp, mlp10, args.tries, args)
        series("mlp vs +50% hidden", mlp, mlp50, args.tries, args)
        series("large mlp vs +10% hidden", big, big10, max(2, args.tries // 4), args)


if __name__ == "__main__":
    main()
