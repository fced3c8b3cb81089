"""The regression gate's figures on real runs on this machine: false alarms and power of the
stored-run compare, the interleaved A/B compare and the history gate of `report`, and the time
A/B takes to a verdict; plus (--simulate-trials) the stored-run rule on synthetic runs.

    PYTHONPATH=. python3 benchmarks/gate.py [--pairs 40] [--ab-pairs 40] [--tries 20] [--heavy-tries 5]
                                          [--history 30] [--step-runs 5] [--step-batch 37] [--timing 3]
                                          [--simulate-trials 300] [--sections stored,ab,...]

Sections (every count is a flag, so a short run is possible):
1. stored: `--pairs` times three back-to-back `bench` runs (edgekit.measure.bench.run_bench, the
   defaults: 2 processes of 4 rounds) of the unchanged demo model and of a small MLP
   (edgekit.testing.models.make_mlp, 256 -> 256 -> 10, batch 32), each stored, judged by
   `edgekit compare RUN1 latest:local:MODEL:2 --json` (in-process CLI): one baseline run against
   two candidate runs (one candidate run never decides: edgekit.judge.regression.confirmed), so
   the interval comes from the run-to-run noise of the series' stored history (at least 8 runs);
   the first tries of each series are "insufficient-data" and counted apart, and so are the
   "unconfirmed" ones (beyond the noise in one candidate run only).
   Goal: flagged "regression" <= 5% of the tries that got a verdict.
2. ab: `--ab-pairs` A/B runs (edgekit.measure.ab.ab_compare, `edgekit compare A B --device
   local`, its defaults: at most 20 ABBA round pairs of >= 0.2 s, 4 looks) of each model against
   itself. Goal: <= 5% flagged.
3. power: the MLP against a copy with 10% more hidden units (282, about 10% more multiply-adds)
   by A/B, `--tries` times (goal >= 90% flagged), and against one with 50% more (384) by A/B and
   by the stored-run compare, `--heavy-tries` times each (goal 100%). Stored mode: a light run
   and two heavy runs back to back, `edgekit compare LIGHT latest:local:HEAVY:2`; the heavy model
   is a new series
   (another artifact and model name), so the noise is the baseline's: the light MLP's stored
   series (section 1's runs), as `compare` always takes it from the baseline's series.
   The 10% copy by the stored mode is measured too, for information (no goal).
4. history: `report`'s history gate (edgekit.report.data.histories, through `edgekit report
   --json`) on the MLP's series topped up to `--history` runs, then `--step-runs` runs after a
   real ~10% step. The series key (edgekit.judge.compare.series_key) is device, model name,
   artifact sha256 and the comparable fingerprint (runtime, version, providers, threads,
   governor, clocks, ...). A changed artifact under the same model name is therefore a new
   series ("not-comparable: a new series"): a model-side step is what `compare` (stored or A/B)
   is for, never a step in one history. A step inside one series keeps the artifact and the
   conditions: a machine-side change outside the fingerprint (a kernel or firmware update, a new
   co-tenant) or a change of the benchmark's inputs (--shape, --inputs). Only the latter is a
   real, repeatable 10% step on a shared machine: the same artifact (its batch dimension is
   dynamic) benched with `--step-batch` rows (default 37) instead of 32, as a nightly job whose
   feed grew. Latency is not proportional to rows here (onnxruntime's GEMM tiles): A/B on this
   machine measured +3.5% for 35 rows, +6% for 36, +14% for 37, +15% for 38.
   Goal: exactly one regression in the series, at the first run after the step (confirmed by
   the second: no run is flagged alone, edgekit.report.data). Regressions
   `report` lists in the demo model's series (section 1's runs, unchanged) are false alarms of
   the history gate and are counted too.
5. timing: time to a verdict of A/B: round pairs used, seconds of timed rounds and wall seconds
   (first `ab` request to verdict, loads included), medians over sections 2 and 3's A/B runs and
   over `--timing` A/B runs of a ~20 ms MLP (1024 -> 2048, batch 256) against a 10% heavier one.
6. simulate: the stored-run rule (edgekit.judge.regression.judge_runs with run_noise) on
   synthetic runs (edgekit.testing.latencies.synthetic_latencies_ms: log-normal body, AR(1)
   drift, 1% outliers, a per-run offset): each run's p50 one observation, the noise from 20
   earlier runs of the baseline's series; per run-to-run variation and runs per side (1 vs 2,
   3 vs 3), the share of `--simulate-trials` trials flagging a 5% slowdown and an identical model.

Runs go through the real agent on the device `local`. EDGEKIT_HOME (store, locks) and the
models are in a temporary directory that is removed at exit; nothing else is written. Prints
one line per measurement as it goes, then a markdown table of all figures with the command line.
No pass/fail: the figures are ratios measured in one run on a shared machine.

Stored, history and simulated figures after the "no single candidate run decides" rule
(2026-12-01, `local`, while another session ran tests on the machine; 9.7 min):

    PYTHONPATH=. python3 benchmarks/gate.py --pairs 15 --tries 5 --heavy-tries 3 --history 30 \
        --step-runs 5 --simulate-trials 300 --sections stored,power,history,simulate

| figure | goal | measured |
|---|---|---|
| stored, demo vs itself, 1 vs 2 runs | <= 5% | 0/12 flagged (3 of 15 insufficient-data, 0 unconfirmed) |
| stored, MLP vs itself, 1 vs 2 runs | <= 5% | 0/12 flagged (3 of 15 insufficient-data, 0 unconfirmed) |
| A/B, MLP +10% / +50% hidden units | >= 90% / 100% | 5/5 (+10.9%) / 3/3 (+41.9%) |
| stored compare (1 vs 2 runs), MLP +50% / +10% | 100% / info | 3/3 (+41.9%) / 3/3 (+11.4%) |
| report: 51 MLP runs + 5 after a +14% step (37 rows) | 1, at the step | 1, at the step (z +26.3, confirmed) |
| report: 45 unchanged demo runs | 0 | 0 |
| simulated 0.5% run-to-run, 1 vs 2 / 3 vs 3 runs | >= 95% / <= 5% | 98.7% / 100%; 0.0% / 0.0% |
| simulated 1.0% run-to-run, 1 vs 2 / 3 vs 3 runs | >= 95% / <= 5% | 63.7% / 96.3%; 0.3% / 0.0% |
| simulated 2.0% run-to-run, 1 vs 2 / 3 vs 3 runs | >= 95% / <= 5% | 17.3% / 44.0%; 0.7% / 0.7% |

Before that rule (one run per side; 2026-11-30): the A/B figures, unaffected by it, were demo and
MLP vs themselves 0/40 each (`--pairs 40 --ab-pairs 40 --tries 20 --heavy-tries 5 --sections
stored,ab,power`, 23.3 min, nothing else running), A/B +10% hidden units 20/20 (median +10.9%),
+50% 5/5 (+41.8%), and A/B time to a verdict 10 round pairs, 4.0 s timed, 4.6 s wall (demo / MLP)
and 4.1 s timed, 5.4 s wall (a ~20 ms MLP vs +10%; `--timing 3`). An earlier run with
`--step-batch 35` (a +3.5% step): `report` flagged that step once, at the step (z +6.3).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SECTIONS = ("stored", "ab", "power", "history", "timing", "simulate")
BATCH, FEATURES = 32, 256


@dataclass
class Figure:
    section: str
    what: str
    goal: str
    value: str
    detail: str = ""


@dataclass
class Bench:
    """The models, the device and the store of one benchmark run."""

    tmp: Path
    store: str
    models: dict[str, Path] = field(default_factory=dict)
    runs: dict[str, list[str]] = field(default_factory=dict)  # model key -> stored run ids
    names: dict[str, str] = field(default_factory=dict)  # model key -> the stored model name
    ab_times: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)


def cli(*args: str) -> tuple[int, dict[str, Any]]:
    """`edgekit ARGS --json` in this process; its exit code and JSON output."""
    from typer.testing import CliRunner

    from edgekit.cli.main import app

    outcome = CliRunner().invoke(app, [*args, "--json"])
    if outcome.exit_code not in (0, 1):
        raise RuntimeError(f"edgekit {' '.join(args)}: exit {outcome.exit_code}: {outcome.output[-400:]}")
    return outcome.exit_code, json.loads(outcome.stdout)


def options(key: str, batch: int = BATCH) -> Any:
    """The `bench` defaults; the small MLPs (batch dimension dynamic) get `--shape input=BATCHx256`."""
    from edgekit.measure.bench import BenchOptions

    return BenchOptions(shapes=(f"input={batch}x{FEATURES}",) if key.startswith("mlp") else ())


def bench(state: Bench, key: str, batch: int = BATCH) -> str:
    """One `bench` run of model `key` (defaults), stored; its run id."""
    from edgekit.measure.bench import run_bench
    from edgekit.store.open import open_store
    from edgekit.transport.board import resolve_board

    result = run_bench(state.models[key], resolve_board("local"), options(key, batch))
    store = open_store(state.store)
    try:
        run_id = store.add_run(result)
    finally:
        store.close()
    state.runs.setdefault(key, []).append(run_id)
    state.names[key] = result.model.name
    return run_id


def two_more(state: Bench, key: str) -> str:
    """Two more `bench` runs of model `key`, back to back: `latest:local:MODEL:2`, the candidate
    side (one candidate run never decides: edgekit.judge.regression.confirmed)."""
    bench(state, key)
    bench(state, key)
    return f"latest:local:{state.names[key]}:2"


def stored_verdict(state: Bench, baseline: str, candidate: str) -> tuple[str, float | None]:
    """`edgekit compare BASELINE CANDIDATE`: the latency verdict ("unconfirmed" for an
    insufficient-data verdict that one candidate run decided) and change."""
    _, out = cli("compare", baseline, candidate, "--store", state.store)
    metric = next(m for m in out["comparison"]["metrics"] if m["metric"] == "latency_p50_ms")
    unconfirmed = metric["verdict"] == "insufficient-data" and "not confirmed" in metric["reason"]
    return ("unconfirmed" if unconfirmed else metric["verdict"]), metric["change"]


def ab(state: Bench, baseline: str, candidate: str, args: argparse.Namespace) -> tuple[str, float | None]:
    """One A/B run (`edgekit compare A B --device local` defaults): latency verdict and change;
    its time to a verdict is kept under the pair's name."""
    from edgekit.measure.ab import AbOptions, ab_compare
    from edgekit.transport.board import resolve_board

    result = ab_compare(
        state.models[baseline], state.models[candidate], resolve_board("local"), options(baseline),
        AbOptions(rounds=args.rounds, round_seconds=args.round_seconds),
    )  # fmt: skip
    used = result.sequential.rounds_used if result.sequential else 0
    m = result.measurement
    state.ab_times.setdefault(f"{baseline} vs {candidate}", []).append((used, m.duration_s, m.wall_s))
    metric = next(v for v in result.comparison.metrics if v.metric == "latency_p50_ms")
    return metric.verdict, metric.change


def share(verdicts: list[str], wanted: str = "regression") -> str:
    return f"{verdicts.count(wanted) / len(verdicts):.1%} ({verdicts.count(wanted)}/{len(verdicts)})"


def log(text: str) -> None:
    print(text, flush=True)


def section_stored(state: Bench, args: argparse.Namespace) -> None:
    verdicts: dict[str, list[str]] = {"demo": [], "mlp": []}
    for index in range(args.pairs):
        for key in verdicts:
            first = bench(state, key)
            verdict, change = stored_verdict(state, first, two_more(state, key))
            verdicts[key].append(verdict)
            log(f"stored {key} 1 vs 2 runs, {index + 1}: {verdict} ({(change or 0):+.1%})")
    for key, seen in verdicts.items():
        judged = [v for v in seen if v != "insufficient-data"]
        state.figures.append(Figure(
            "1 stored", f"false alarms, {key} vs itself, 1 vs 2 runs", "<= 5%",
            share(judged) if judged else "—",
            f"{len(seen) - len(judged)} of {len(seen)} insufficient-data (history < 8 runs); "
            f"{seen.count('unconfirmed')} beyond the noise in one candidate run only (unconfirmed)",
        ))  # fmt: skip


def section_ab(state: Bench, args: argparse.Namespace) -> None:
    for key in ("demo", "mlp"):
        seen = []
        for index in range(args.ab_pairs):
            verdict, change = ab(state, key, key, args)
            seen.append(verdict)
            log(f"A/B {key} vs itself {index + 1}: {verdict} ({(change or 0):+.1%})")
        state.figures.append(Figure("2 A/B", f"false alarms, {key} vs itself", "<= 5%", share(seen)))


def _changes(changes: list[float | None]) -> str:
    return f"median change {statistics.median([c or 0.0 for c in changes]):+.1%}"


def section_power(state: Bench, args: argparse.Namespace) -> None:
    for heavy, count, goal in (("mlp10", args.tries, ">= 90%"), ("mlp50", args.heavy_tries, "100%")):
        outcomes = [ab(state, "mlp", heavy, args) for _ in range(count)]
        log(f"A/B mlp vs {heavy}: {[v for v, _ in outcomes]}")
        state.figures.append(Figure(
            "3 power", f"A/B catches {heavy[3:]}% more hidden units", goal,
            share([v for v, _ in outcomes]), _changes([c for _, c in outcomes]),
        ))  # fmt: skip
    for heavy, goal in (("mlp50", "100%"), ("mlp10", "(info)")):
        outcomes = []
        for _ in range(args.heavy_tries):
            light = bench(state, "mlp")
            outcomes.append(stored_verdict(state, light, two_more(state, heavy)))
        log(f"stored mlp vs {heavy}: {[v for v, _ in outcomes]}")
        state.figures.append(Figure(
            "3 power", f"stored compare (1 vs 2 runs) catches {heavy[3:]}% more hidden units", goal,
            share([v for v, _ in outcomes]),
            f"{_changes([c for _, c in outcomes])}; noise from the light MLP's stored series",
        ))  # fmt: skip


def section_history(state: Bench, args: argparse.Namespace) -> None:
    while len(state.runs.get("mlp", [])) < args.history:
        bench(state, "mlp")
    before = len(state.runs["mlp"])
    steps = [bench(state, "mlp", args.step_batch) for _ in range(args.step_runs)]
    _, out = cli("report", "--store", state.store, "--format", "markdown")
    flagged = [r for r in out["regressions"] if r["run_id"] in state.runs["mlp"]]
    demo = [r for r in out["regressions"] if r["run_id"] in state.runs.get("demo", [])]
    at_step = [r["run_id"] for r in flagged] == steps[:1]
    for r in out["regressions"]:
        log(f"report: {r['model']} {r['run_id'][:12]}: {r['reason']}")
    state.figures.append(Figure(
        "4 history", f"report on {before} MLP runs + {len(steps)} after a step to {args.step_batch} rows",
        "exactly 1, at the step", f"{len(flagged)} flagged" + (", at the step" if at_step else ""),
        "; ".join(r["reason"] for r in flagged)[:160],
    ))  # fmt: skip
    if state.runs.get("demo"):
        state.figures.append(Figure(
            "4 history", f"report on {len(state.runs['demo'])} unchanged demo runs", "0",
            f"{len(demo)} flagged",
        ))  # fmt: skip


def section_timing(state: Bench, args: argparse.Namespace) -> None:
    for _ in range(args.timing):
        verdict, change = ab(state, "big", "big10", args)
        log(f"A/B big vs big10: {verdict} ({(change or 0):+.1%})")
    for name, times in state.ab_times.items():
        pairs, timed, wall = (statistics.median(column) for column in zip(*times, strict=True))
        state.figures.append(Figure(
            "5 time", f"A/B to a verdict, {name}", "—",
            f"{pairs:.0f} pairs, {timed:.1f} s timed, {wall:.1f} s wall", f"median of {len(times)}",
        ))  # fmt: skip


def flagged_share(slowdown: float, trials: int, run_sigma: float, runs_per_side: int, seed: int) -> float:
    """Synthetic: the share of trials in which judge_runs flags `slowdown` (a fraction), each run's
    p50 one observation, the noise from 20 earlier runs of the baseline's series; `runs_per_side`
    baseline runs and at least 2 candidate runs (one never decides)."""
    from edgekit.judge.regression import judge_runs, run_noise
    from edgekit.testing.latencies import synthetic_latencies_ms

    rng = np.random.default_rng(seed)

    def p50s(count: int, factor: float) -> list[float]:
        return [
            float(np.median(synthetic_latencies_ms(rng, slowdown=factor, run_sigma=run_sigma)))
            for _ in range(count)
        ]

    hits = 0
    for _ in range(trials):
        noise = run_noise(p50s(20, 0.0))
        baseline, candidate = p50s(runs_per_side, 0.0), p50s(max(2, runs_per_side), slowdown)
        hits += judge_runs("latency_p50_ms", baseline, candidate, noise=noise).verdict == "regression"
    return hits / trials


def section_simulate(state: Bench, args: argparse.Namespace) -> None:
    from edgekit.judge.regression import DEFAULT_THRESHOLD

    for run_sigma in (0.005, 0.01, 0.02):
        for runs in (1, 3):
            detect = flagged_share(DEFAULT_THRESHOLD, args.simulate_trials, run_sigma, runs, args.seed)
            false = flagged_share(0.0, args.simulate_trials, run_sigma, runs, args.seed + 1)
            state.figures.append(Figure(
                "6 simulated", f"{run_sigma:.1%} run-to-run, {runs} vs {max(2, runs)} runs, 20-run history",
                ">= 95% / <= 5%", f"detects 5%: {detect:.1%}; false alarms {false:.1%}",
                f"{args.simulate_trials} trials",
            ))  # fmt: skip
            log(state.figures[-1].what + ": " + state.figures[-1].value)


RUNNERS: dict[str, Callable[[Bench, argparse.Namespace], None]] = {
    "stored": section_stored, "ab": section_ab, "power": section_power,
    "history": section_history, "timing": section_timing, "simulate": section_simulate,
}  # fmt: skip


def make_models(tmp: Path) -> dict[str, Path]:
    from edgekit.data import demo_model_path
    from edgekit.testing.models import make_mlp

    def mlp(name: str, **shape: Any) -> Path:
        return make_mlp(tmp / f"{name}.onnx", **shape)

    return {
        "demo": demo_model_path(),
        "mlp": mlp("mlp", features=FEATURES, hidden=256),
        "mlp10": mlp("mlp10", features=FEATURES, hidden=282),
        "mlp50": mlp("mlp50", features=FEATURES, hidden=384),
        "big": mlp("big", features=1024, hidden=2048, batch=256),
        "big10": mlp("big10", features=1024, hidden=2253, batch=256),
    }


def table(figures: list[Figure], command: str, seconds: float) -> str:
    lines = [
        f"`{command}` ({seconds / 60:.1f} min)",
        "",
        "| section | figure | goal | measured | detail |",
        "|---|---|---|---|---|",
        *(f"| {f.section} | {f.what} | {f.goal} | {f.value} | {f.detail} |" for f in figures),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="stored: back-to-back run pairs per model")
    parser.add_argument("--ab-pairs", type=int, default=40, help="ab: A/B runs per model vs itself")
    parser.add_argument("--tries", type=int, default=20, help="power: A/B runs vs the 10%% heavier MLP")
    parser.add_argument("--heavy-tries", type=int, default=5, help="power: tries vs 50%% heavier, per mode")
    parser.add_argument("--history", type=int, default=30, help="history: MLP runs before the step")
    parser.add_argument("--step-runs", type=int, default=5, help="history: runs after the step")
    parser.add_argument("--step-batch", type=int, default=37, help="history: rows after the step (32 before)")
    parser.add_argument("--timing", type=int, default=3, help="timing: A/B runs of the ~20 ms MLP")
    parser.add_argument("--simulate-trials", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20, help="A/B round pairs at most")
    parser.add_argument("--round-seconds", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated, of: %(default)s")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    command = shlex.join(["PYTHONPATH=.", "python3", "benchmarks/gate.py", *sys.argv[1:]])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgekit-gate-") as folder:
        tmp = Path(folder)
        os.environ["EDGEKIT_HOME"] = str(tmp / "home")
        os.environ.pop("EDGEKIT_STORE", None)
        state = Bench(tmp, str(tmp / "results.sqlite"), make_models(tmp))
        for name in SECTIONS:
            if name in chosen:
                RUNNERS[name](state, args)
        print()
        print(table(state.figures, command, time.monotonic() - started))


if __name__ == "__main__":
    main()
