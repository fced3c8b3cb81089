"""`edgekit optimize` on real models on `local`: is the pick accurate, fast and reproducible?

    python benchmarks/optimize.py [--models demo,efficientnet-lite0] [--reps 5] [--time-budget 20m]

For each model: two searches with the same seed into fresh directories (same front?), then the
float model, the fastest single recipe the search accepted and the search's pick, re-measured
through the agent in interleaved repetitions in one run (medians of p50s), so the speed-ups
are ratios taken side by side, not numbers minutes apart. EfficientNet-Lite0 needs the model
packages listed in benchmarks/compression.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from compression import BenchModel, demo, efficientnet_lite0, latency_p50s

from edgekit.measure.bench import BenchOptions
from edgekit.optimize.search import DeviceReport, OptimizeOptions, optimize
from edgekit.optimize.state import ACCEPTED
from edgekit.transport.board import resolve_board

MODELS = {"demo": demo, "efficientnet-lite0": efficientnet_lite0}


def search(model: BenchModel, out: Path, budget_s: float, max_drop: float) -> DeviceReport:
    options = OptimizeOptions(
        model=model.model,
        eval=model.evaluation,
        calib=model.calib,
        out_dir=out,
        max_accuracy_drop=max_drop,
        time_budget_s=budget_s,
        bench=BenchOptions(runs=100, min_seconds=1.0),
    )

    def progress(event: dict[str, object]) -> None:
        if event.get("phase") == "outcome":
            outcome = event["outcome"]
            assert isinstance(outcome, dict)
            print(f"  {outcome['name']}: {outcome['status']} ({outcome['reason']})", file=sys.stderr)

    _, (report,) = optimize(options, [resolve_board("local")], on_event=progress)
    return report


def run(name: str, workdir: Path, reps: int, budget_s: float, max_drop: float) -> dict[str, object]:
    model = MODELS[name](workdir)
    print(f"{name}: search 1", file=sys.stderr)
    first = search(model, workdir / f"{name}-a", budget_s, max_drop)
    print(f"{name}: search 2 (same seed)", file=sys.stderr)
    second = search(model, workdir / f"{name}-b", budget_s, max_drop)
    outcomes = {o.name: o for o in first.outcomes}
    singles = [o for o in first.outcomes if o.status == ACCEPTED and "+" not in o.name and o.latency_p50_ms]
    best_single = min(singles, key=lambda o: o.latency_p50_ms or 0.0) if singles else None
    paths = {"float": model.model}
    if best_single is not None:
        paths["best single"] = Path(best_single.artifact or "")
    chosen = outcomes[first.chosen] if first.chosen else None
    if chosen is not None and chosen.name != "float":
        paths["chosen"] = Path(chosen.artifact or "")
    print(f"{name}: interleaved re-measurement of {', '.join(paths)}", file=sys.stderr)
    p50 = latency_p50s(paths, reps, 1.0)
    return {
        "model": name,
        "chosen": first.chosen,
        "accuracy drop": chosen.accuracy_drop_points if chosen else None,
        "best single": best_single.name if best_single else None,
        "chosen speed-up": p50["float"] / p50.get("chosen", p50["float"]),
        "best single speed-up": p50["float"] / p50["best single"] if "best single" in p50 else None,
        "same front": first.front == second.front and first.chosen == second.chosen,
        "front": first.front,
        "measured": sum(1 for o in first.outcomes if o.latency_p50_ms is not None),
        "tried": len(first.outcomes),
    }


def _points(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,efficientnet-lite0")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--time-budget", type=float, default=1200.0, help="seconds per search")
    parser.add_argument("--max-accuracy-drop", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgekit-optimize-bench-") as scratch:
        rows = [
            run(name, Path(scratch), args.reps, args.time_budget, args.max_accuracy_drop)
            for name in args.models.split(",")
        ]
    print(
        "| model | chosen | accuracy drop (points) | chosen speed-up | fastest single recipe | its speed-up "
        "| same front twice | candidates measured / tried |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        best = r["best single speed-up"]
        print(
            f"| {r['model']} | {r['chosen']} | {_points(r['accuracy drop'])} | {r['chosen speed-up']:.2f}x | "
            f"{r['best single']} | {f'{best:.2f}x' if best else '—'} | {r['same front']} | "
            f"{r['measured']} / {r['tried']} |"
        )


if __name__ == "__main__":
    main()
