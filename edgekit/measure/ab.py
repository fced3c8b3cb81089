"""An interleaved A/B run on one device -> two Results with a shared A/B id, and the per-round-pair
log-ratios the A/B gate (edgekit.judge.paired) judges.

In one agent session both models are staged, then the round pairs are timed look by look
(edgekit.judge.paired.look_schedule): one `ab` request per look (docs/protocol.md) loads both
models in ONE fresh bench child, warms both and times that look's round pairs in ABBA order, each
round at least `round_seconds` and `round_min_runs` inferences. After each look the host applies
the sequential rule of edgekit.judge.paired to all pairs so far and stops when the interval
decides, so a clear verdict costs fewer rounds (the alpha-spending rule keeps the false-alarm rate
at alpha). The agent applies no statistics. A fresh child per look also spreads the comparison
over processes (memory placement, as pyperf's worker processes do). Then one short ordinary
`bench` per side, each in its own child process, gives that side's peak RSS, cold start and
energy (one process cannot split its peak RSS between two models).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import UsageError
from edgekit.core.result import AbRun, Result
from edgekit.judge.compare import Comparison, compare_paired
from edgekit.judge.paired import DEFAULT_LOOKS, SequentialVerdict, judge_paired, look_schedule
from edgekit.judge.regression import DEFAULT_THRESHOLD
from edgekit.measure.bench import (
    BenchOptions,
    EventCallback,
    accelerators_for,
    bench_params,
    build_result,
    check_accelerators_applied,
    prepare_model,
    stage_model,
    warn_accelerator_outcome,
)
from edgekit.transport.agent_client import agent_session
from edgekit.transport.board import Board

ORDER = "ABBA"
# A side's own bench params: a candidate may run on other providers or another delegate.
SIDE_KEYS = (
    "artifact",
    "inputs",
    "inputs_file",
    "seed",
    "threads",
    "providers",
    "provider_options",
    "delegate",
    "delegate_options",
    "chosen_by",
    "fresh_engine",
)


@dataclass(frozen=True)
class AbOptions:
    rounds: int = 20  # round pairs
    round_seconds: float = 0.2  # each round times at least this long ...
    round_min_runs: int = 5  # ... and at least this many inferences
    memory_runs: int = 20  # timed inferences of each side's short memory bench
    looks: int = DEFAULT_LOOKS  # looks at the data, evenly spaced up to `rounds`

    def validate(self) -> None:
        if self.rounds < 1:
            raise UsageError(f"--rounds must be >= 1, got {self.rounds}")
        if self.round_seconds < 0:
            raise UsageError(f"--round-seconds must be >= 0, got {self.round_seconds:g}")
        if self.round_min_runs < 1 or self.memory_runs < 1 or self.looks < 1:
            raise UsageError("round runs, memory runs and looks must be >= 1")


@dataclass(frozen=True)
class AbMeasurement:
    ab_id: str
    baseline: Result
    candidate: Result
    baseline_round_ms: list[float]  # median of each baseline round, ms, in time order
    candidate_round_ms: list[float]
    planned: int  # round pairs planned (--rounds); len(baseline_round_ms) were timed
    duration_s: float  # the interleaved rounds' time, s (model loads and warm-ups not included)
    chunks: int  # `ab` requests (looks) made, each in a fresh bench child
    wall_s: float  # from the first `ab` request to the verdict's last reply (loads included), s

    @property
    def log_ratios(self) -> list[float]:
        """log(candidate round median / baseline round median) per round pair, in time order."""
        return [math.log(c / b) for b, c in zip(self.baseline_round_ms, self.candidate_round_ms, strict=True)]


def _merge_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One `ab` reply from the replies of several `ab` requests (one per look), in time order."""
    sides = []
    for index in range(2):
        first = chunks[0]["sides"][index]
        rounds = [r for chunk in chunks for r in chunk["sides"][index]["rounds_ns"]]
        sides.append({**first, "rounds_ns": rounds})
    window = dict(chunks[0].get("window") or {})
    window["duration_s"] = sum(float((c.get("window") or {}).get("duration_s") or 0.0) for c in chunks)
    waits = [c.get("thermal_wait") for c in chunks if c.get("thermal_wait")]
    timed_out = [w for w in waits if w.get("timed_out")]
    return {
        "sides": sides,
        "thermal_wait": (timed_out or waits or [None])[0],  # a look that started hot makes it suspect
        "sensors_start": chunks[0].get("sensors_start"),
        "sensors_end": chunks[-1].get("sensors_end"),
        "window": window,
    }


def run_ab(
    baseline_path: Path,
    candidate_path: Path,
    board: Board,
    options: BenchOptions,
    ab_options: AbOptions,
    threshold: float = DEFAULT_THRESHOLD,
    on_event: EventCallback | None = None,
    candidate_options: BenchOptions | None = None,
) -> AbMeasurement:
    """Measure both models now on the board's device (module docstring), stopping at the first
    look whose interval decides (edgekit.judge.paired with `threshold`, a fraction). `options`
    apply to both sides unless `candidate_options` (e.g. other threads) are given for the
    candidate; the runtime and warm-up are always the baseline's. Raises
    UsageError / ModelError / InputSpecError for a bad model or option before the device is
    touched (exit 2), DeviceError when the device or its agent fails (exit 3)."""
    ab_options.validate()
    side_options = [options, candidate_options or options]
    prepared = [prepare_model(baseline_path, options), prepare_model(candidate_path, side_options[1])]
    for side, side_option in zip(prepared, side_options, strict=True):
        accelerators_for(side, board, side_option)  # a usage error before the device is touched
    emit = on_event or (lambda event: None)
    emit({"phase": "connect", "device": board.device.name})
    transport = board.device.transport()
    memory_options = [replace(o, runs=ab_options.memory_runs, min_seconds=0.0) for o in side_options]
    schedule = look_schedule(ab_options.rounds, ab_options.looks)
    with agent_session(transport) as client:
        hello = client.hello()
        staged = [stage_model(transport, side) for side in prepared]
        sides = [bench_params(s, p, board, o) for s, p, o in zip(staged, prepared, side_options, strict=True)]
        chunks: list[dict[str, Any]] = []
        done = 0
        started = time.perf_counter()
        for look in schedule:
            offset = done

            def relay(event: dict[str, Any], offset: int = offset) -> None:
                if event.get("phase") == "ab":
                    event = dict(event, done=int(event.get("done") or 0) + offset, total=ab_options.rounds)
                emit(event)

            chunks.append(
                client.ab(
                    {
                        **sides[0],
                        "baseline": {k: sides[0][k] for k in SIDE_KEYS},
                        "candidate": {k: sides[1][k] for k in SIDE_KEYS},
                        "rounds": look - done,
                        "round_seconds": ab_options.round_seconds,
                        "round_min_runs": ab_options.round_min_runs,
                    },
                    on_progress=relay,
                )
            )
            done = look
            if look < ab_options.rounds and _decided(_merge_chunks(chunks), ab_options, threshold):
                emit(
                    {
                        "phase": "ab",
                        "message": f"decided after {done} of at most {ab_options.rounds} round pairs",
                    }
                )
                break
        wall_s = time.perf_counter() - started
        raw_memory = [
            client.bench(bench_params(s, p, board, o), on_progress=emit)
            for s, p, o in zip(staged, prepared, memory_options, strict=True)
        ]
    raw_ab = _merge_chunks(chunks)
    ab_id = uuid.uuid4().hex
    results: list[Result] = []
    round_medians: list[list[float]] = []
    for index, role in enumerate(("baseline", "candidate")):
        side = raw_ab["sides"][index]
        rounds_ns: list[list[int]] = side["rounds_ns"]
        round_medians.append([float(np.median(r)) / 1e6 for r in rounds_ns])
        latencies = [ns for r in rounds_ns for ns in r]
        # latency, runtime, outputs, thermal and window from the interleaved run; memory, cold
        # start and energy from the side's own bench child
        raw = {
            **raw_memory[index],
            "runtime": side["runtime"],
            "latencies_ns": latencies,
            "outputs": side.get("outputs"),
            "sensors_start": raw_ab.get("sensors_start"),
            "sensors_end": raw_ab.get("sensors_end"),
            "window": raw_ab.get("window"),
            "thermal_wait": raw_ab.get("thermal_wait"),
        }
        check_accelerators_applied(sides[index], raw, board.device.name)
        warn_accelerator_outcome(raw)
        result = build_result(
            board=board,
            hello=hello,
            prepared=prepared[index],
            raw=raw,
            options=replace(side_options[index], runs=len(latencies), min_seconds=0.0),
            transfer=staged[index].transfer,
        )
        result.ab = AbRun(ab_id=ab_id, role=role, rounds=len(rounds_ns), order=ORDER)
        results.append(result)
    emit({"phase": "done", "device": board.device.name})
    return AbMeasurement(
        ab_id,
        results[0],
        results[1],
        round_medians[0],
        round_medians[1],
        ab_options.rounds,
        float((raw_ab.get("window") or {}).get("duration_s") or 0.0),
        len(chunks),
        wall_s,
    )


def _decided(raw_ab: dict[str, Any], ab_options: AbOptions, threshold: float) -> bool:
    """Whether the looks so far stop the run early (edgekit.judge.paired's rule)."""
    medians = [[float(np.median(r)) for r in side["rounds_ns"]] for side in raw_ab["sides"]]
    ratios = [math.log(c / b) for b, c in zip(medians[0], medians[1], strict=True)]
    verdict = judge_paired(
        "latency_p50_ms", ratios, threshold=threshold, looks=ab_options.looks, planned=ab_options.rounds
    )
    return verdict.stopped_early


@dataclass(frozen=True)
class AbComparison:
    """An A/B run and its verdict: the measurement, the comparison (edgekit.judge.compare) and
    the latency's sequential verdict (None when the runs are not comparable)."""

    measurement: AbMeasurement
    comparison: Comparison
    sequential: SequentialVerdict | None

    def summary(self) -> dict[str, Any]:
        """The A/B run's facts as JSON (the `ab` object of `compare --device --json`)."""
        m, sequential = self.measurement, self.sequential
        summary: dict[str, Any] = {
            "ab_id": m.ab_id,
            "baseline_run": m.baseline.run_id,
            "candidate_run": m.candidate.run_id,
            "order": ORDER,
            "rounds_planned": m.planned,
            "rounds_timed": len(m.log_ratios),
            "child_processes": m.chunks,
            "seconds_timed": round(m.duration_s, 3),
            "seconds_to_verdict": round(m.wall_s, 3),
            "log_ratios": m.log_ratios,
        }
        if sequential is not None:
            summary.update(
                rounds_used=sequential.rounds_used,
                looks=sequential.looks,
                stopped_early=sequential.stopped_early,
                interval_level=sequential.level,
            )
        return summary

    def to_dict(self) -> dict[str, Any]:
        return {"ab": self.summary(), "comparison": self.comparison.to_dict()}


def ab_compare(
    baseline_path: Path,
    candidate_path: Path,
    board: Board,
    options: BenchOptions,
    ab_options: AbOptions,
    thresholds: dict[str, float] | None = None,
    ignore: set[str] | None = None,
    on_event: EventCallback | None = None,
    candidate_options: BenchOptions | None = None,
) -> AbComparison:
    """run_ab, then its verdict (edgekit.judge.compare.compare_paired); `thresholds` as
    edgekit.judge.compare.parse_thresholds gives them (fractions per metric, "*" for all). The
    results are not stored (the caller's choice); errors as run_ab."""
    chosen = thresholds or {}
    threshold = chosen.get("latency_p50_ms", chosen.get("*", DEFAULT_THRESHOLD))
    measurement = run_ab(
        baseline_path, candidate_path, board, options, ab_options, threshold, on_event, candidate_options
    )
    comparison, sequential = compare_paired(
        measurement.baseline,
        measurement.candidate,
        measurement.log_ratios,
        measurement.planned,
        chosen,
        ignore,
        ab_options.looks,
    )
    return AbComparison(measurement, comparison, sequential)
