"""An interleaved A/B run on one device -> two Results with a shared A/B id, and the per-round-pair
log-ratios the A/B gate (edgekit.judge.paired) judges.

In one agent session: both models are staged; one `ab` request (docs/protocol.md) loads both in
ONE bench child, warms both and times `rounds` round pairs in ABBA order, each round at least
`round_seconds` and `round_min_runs` inferences; then one short ordinary `bench` per side, each in
its own child process, gives that side's peak RSS, cold start and energy (one process cannot split
its peak RSS between two models).

Early stopping: the agent runs all planned rounds (the protocol is one request, one reply, and the
agent applies no statistics). The sequential looks of edgekit.judge.paired are applied on the host
afterwards, so the report says after how many round pairs the verdict was reached (the time to a
verdict) with the false-alarm rate the alpha-spending rule guarantees; `--rounds` bounds the time.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgekit.core.errors import UsageError
from edgekit.core.result import AbRun, Result
from edgekit.measure.bench import (
    BenchOptions,
    EventCallback,
    bench_params,
    build_result,
    prepare_model,
    stage_model,
)
from edgekit.transport.agent_client import agent_session
from edgekit.transport.board import Board

ORDER = "ABBA"


@dataclass(frozen=True)
class AbOptions:
    rounds: int = 20  # round pairs
    round_seconds: float = 0.2  # each round times at least this long ...
    round_min_runs: int = 5  # ... and at least this many inferences
    memory_runs: int = 20  # timed inferences of each side's short memory bench

    def validate(self) -> None:
        if self.rounds < 1:
            raise UsageError(f"--rounds must be >= 1, got {self.rounds}")
        if self.round_seconds < 0:
            raise UsageError(f"--round-seconds must be >= 0, got {self.round_seconds:g}")
        if self.round_min_runs < 1 or self.memory_runs < 1:
            raise UsageError("round and memory runs must be >= 1")


@dataclass(frozen=True)
class AbMeasurement:
    ab_id: str
    baseline: Result
    candidate: Result
    baseline_round_ms: list[float]  # median of each baseline round, ms, in time order
    candidate_round_ms: list[float]
    rounds: int  # round pairs timed
    duration_s: float  # the interleaved window, s

    @property
    def log_ratios(self) -> list[float]:
        """log(candidate round median / baseline round median) per round pair, in time order."""
        return [math.log(c / b) for b, c in zip(self.baseline_round_ms, self.candidate_round_ms, strict=True)]


def run_ab(
    baseline_path: Path,
    candidate_path: Path,
    board: Board,
    options: BenchOptions,
    ab_options: AbOptions,
    on_event: EventCallback | None = None,
) -> AbMeasurement:
    """Measure both models now on the board's device (module docstring). Raises UsageError /
    ModelError / InputSpecError for a bad model or option before the device is touched (exit 2),
    DeviceError when the device or its agent fails (exit 3)."""
    ab_options.validate()
    prepared = [prepare_model(baseline_path, options), prepare_model(candidate_path, options)]
    emit = on_event or (lambda event: None)
    emit({"phase": "connect", "device": board.device.name})
    transport = board.device.transport()
    memory_options = replace(options, runs=ab_options.memory_runs, min_seconds=0.0)
    with agent_session(transport) as client:
        hello = client.hello()
        staged = [stage_model(transport, side) for side in prepared]
        sides = [bench_params(s, p, board, options) for s, p in zip(staged, prepared, strict=True)]
        raw_ab = client.ab(
            {
                **sides[0],
                "baseline": {k: sides[0][k] for k in ("artifact", "inputs", "inputs_file", "seed")},
                "candidate": {k: sides[1][k] for k in ("artifact", "inputs", "inputs_file", "seed")},
                "rounds": ab_options.rounds,
                "round_seconds": ab_options.round_seconds,
                "round_min_runs": ab_options.round_min_runs,
            },
            on_progress=emit,
        )
        raw_memory = [
            client.bench(bench_params(s, p, board, memory_options), on_progress=emit)
            for s, p in zip(staged, prepared, strict=True)
        ]
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
            "thermal_wait": raw_memory[index].get("thermal_wait"),
        }
        result = build_result(
            board=board,
            hello=hello,
            prepared=prepared[index],
            raw=raw,
            options=replace(options, runs=len(latencies), min_seconds=0.0),
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
        len(round_medians[0]),
        float((raw_ab.get("window") or {}).get("duration_s") or 0.0),
    )
