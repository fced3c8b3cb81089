"""One benchmark run on one device -> one Result (edgekit.core.result).

The timed window is spread over `processes` fresh bench child processes on the device, one
after another (as pyperf spreads a benchmark over worker processes), each timing `rounds`
back-to-back rounds; runs, min_seconds and max_seconds are totals over all of them. The round
medians are the observations of the p50 interval (edgekit.judge.stats.summarize_rounds); cold
start, memory and energy come from the first process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.core.accelerators import AcceleratorRequest, accelerator_params
from edgekit.core.artifacts import Artifact, load_artifact, sha256_file
from edgekit.core.errors import DeviceError, UsageError, warn
from edgekit.core.inputs import (
    InputSpec,
    check_inputs_file,
    feed_files,
    parse_shape_options,
    resolve_input_spec,
)
from edgekit.core.onnx_model import graph_inputs, load_onnx
from edgekit.core.profiles import DeviceProfile
from edgekit.core.result import (
    RESULT_SCHEMA,
    BudgetVerdict,
    Energy,
    Fingerprint,
    Latency,
    Measurement,
    Memory,
    Result,
    Thermal,
)
from edgekit.judge.budgets import evaluate, unjudgeable_metrics
from edgekit.judge.fingerprint import build_fingerprint
from edgekit.judge.regression import BLOCKS, block_medians
from edgekit.judge.stats import latency_histogram, ns_to_ms, summarize_latencies, summarize_rounds
from edgekit.judge.thermal import thermal_summary
from edgekit.transport.agent_client import agent_session
from edgekit.transport.base import Transport
from edgekit.transport.board import Board
from edgekit.transport.devices import Device

EventCallback = Callable[[dict[str, Any]], None]

DEFAULT_PROCESSES = 2
ROUND_SECONDS = 0.25  # automatic rounds last about this long (min_seconds / processes / rounds)
MAX_AUTO_ROUNDS = 20  # automatic rounds per process, at most


@dataclass(frozen=True)
class BenchOptions:
    runs: int = 100
    warmup: int = 10
    min_seconds: float = 2.0
    max_seconds: float = 600.0
    threads: int | None = None  # None: the profile's default_threads
    shapes: tuple[str, ...] = ()
    inputs_file: Path | None = None
    runtime: str = "auto"
    seed: int = 0
    lock_timeout_s: float = 600.0  # wait this long for another benchmark on the board to finish
    thermal_wait_timeout_s: float = 300.0  # wait this long for max_start_temp_c, then run (suspect)
    processes: int = DEFAULT_PROCESSES  # fresh bench child processes, one after another
    rounds: int | None = None  # timed rounds per process; None: resolved_rounds' automatic choice
    # --provider/--provider-option/--delegate/--delegate-option (edgekit.core.accelerators)
    accelerators: AcceleratorRequest = field(default_factory=AcceleratorRequest)

    def resolved_rounds(self) -> int:
        """Rounds per process: `rounds` when given, else min_seconds / processes / ROUND_SECONDS
        rounded down, between 1 and MAX_AUTO_ROUNDS (the defaults, 2 s over 2 processes, give 4
        rounds of 0.25 s each per process: 8 round medians)."""
        if self.rounds is not None:
            return self.rounds
        return max(1, min(MAX_AUTO_ROUNDS, int(self.min_seconds / self.processes / ROUND_SECONDS + 1e-9)))

    def validate(self) -> None:
        if self.processes < 1:
            raise UsageError(f"--processes must be >= 1, got {self.processes}")
        if self.rounds is not None and self.rounds < 1:
            raise UsageError(f"--rounds must be >= 1, got {self.rounds}")
        if self.runs < 1:
            raise UsageError(f"--runs must be >= 1, got {self.runs}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be >= 0, got {self.warmup}")
        if not 0 <= self.min_seconds <= self.max_seconds:
            raise UsageError(
                f"--min-seconds must be between 0 and {self.max_seconds:g}, got {self.min_seconds:g}"
            )
        if self.thermal_wait_timeout_s < 0:
            raise UsageError(f"--thermal-wait-timeout must be >= 0, got {self.thermal_wait_timeout_s:g}")
        if self.threads is not None and self.threads < 0:
            raise UsageError(f"--threads must be >= 0 (0 = runtime default), got {self.threads}")
        if self.seed < 0:
            raise UsageError(f"--seed must be >= 0, got {self.seed}")
        if not 0 <= self.lock_timeout_s < float("inf"):
            raise UsageError(f"--lock-timeout must be a number of seconds >= 0, got {self.lock_timeout_s:g}")
        if not self.thermal_wait_timeout_s < float("inf"):
            raise UsageError(f"--thermal-wait-timeout must be finite, got {self.thermal_wait_timeout_s:g}")
        self.accelerators.validate()


@dataclass(frozen=True)
class PreparedModel:
    artifact: Artifact
    inputs: InputSpec
    inputs_file: Path | None = None  # the .npz sent to the device (a per-feed folder's first file)


def prepare_model(path: Path, options: BenchOptions) -> PreparedModel:
    """Everything that can be checked on the host, before any device is touched: the options,
    the artifact, and the inputs (generated from the model's spec and --shape, or read from
    --inputs: an .npz with rows, or a folder of per-feed .npz files of which the first is fed).
    ONNX and TFLite get the same checks (names, dtypes, ranks, fixed dimensions). Raises
    UsageError, ModelError or InputSpecError (exit 2)."""
    options.validate()
    artifact = load_artifact(path)
    options.accelerators.check_format(artifact.format)
    if artifact.format == "tflite":
        from edgekit.core.tflite_model import declared_inputs

        declared = declared_inputs(artifact.path)
    else:
        declared = graph_inputs(load_onnx(artifact.path))
    shapes = parse_shape_options(options.shapes, [i.name for i in declared])
    inputs_file = options.inputs_file
    if inputs_file is not None:
        # inputs the artifact was specialised for (compress --fix-input) are gone from it
        fixed = ((artifact.manifest or {}).get("specialized") or {}).get("fixed_inputs") or {}
        spec = check_inputs_file(inputs_file, declared, shapes, ignore=set(fixed))
        if inputs_file.is_dir():
            inputs_file = feed_files(inputs_file)[0]
    else:
        spec = resolve_input_spec(declared, shapes)
    return PreparedModel(artifact, spec, inputs_file)


def _threads(options: BenchOptions, profile: DeviceProfile) -> int | None:
    threads = options.threads if options.threads is not None else profile.facts.default_threads
    return threads or None  # 0 = let the runtime decide


def device_cores(facts: dict[str, Any]) -> int | None:
    """The CPU cores the device can run on (its `hello` facts: cores online, else os.cpu_count()),
    None when it did not say."""
    online = facts.get("cores_online")
    if isinstance(online, list) and online:
        return len(online)
    cores = facts.get("cores")
    return cores if isinstance(cores, int) and cores > 0 else None


def warn_threads_over_cores(board: Board, options: BenchOptions, facts: dict[str, Any]) -> None:
    """An EdgekitWarning when the bench would run more intra-op threads than the device has cores
    (a profile's default_threads on a smaller machine): the latencies then measure contention,
    not the board."""
    threads, cores = _threads(options, board.profile), device_cores(facts)
    if threads is None or cores is None or threads <= cores:
        return
    source = "--threads" if options.threads is not None else f"profile {board.profile.name}'s default_threads"
    warn(
        f"device {board.device.name!r} has {cores} cores but the bench runs {threads} threads ({source}): "
        f"threads beyond the cores contend, so latencies are not the board's; pass --threads {cores} or fewer"
    )


def sensor_params(board: Board, options: BenchOptions) -> dict[str, Any]:
    """Bench params for energy and the thermal wait (docs/protocol.md): the profile's sensors and
    the board's effective max_start_temp_c (deg C, None = no wait)."""
    sensors = board.profile.sensors
    return {
        "power_sensors": list(sensors.power),
        "sensor_options": sensors.sensor_options(),
        "thermal_zone": sensors.thermal_zone,
        "max_start_temp_c": board.budget.max_start_temp_c,
        "thermal_wait_timeout_s": options.thermal_wait_timeout_s,
    }


def energy_section(raw: dict[str, Any]) -> tuple[Energy | None, str | None]:
    """The result's "energy" (None when not measured) and the reason when it is None."""
    energy = raw.get("energy")
    if not isinstance(energy, dict):
        return None, "the agent did not measure energy (an older agent?)"
    if energy.get("mj_per_inference") is None:
        return None, str(energy.get("reason") or "not measured")
    return Energy.model_validate({key: value for key, value in energy.items() if key != "reason"}), None


def run_bench(
    model_path: Path,
    board: Board,
    options: BenchOptions,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Result:
    """Benchmark on the board's device and judge against the board's budget (the profile's, with
    any overrides). Raises UsageError/ModelError for a bad model or option before the device is
    touched, DeviceError (exit 3) when the device or its agent fails, CancelledError (exit 130)
    once `cancel` is set (another thread's Ctrl-C); interrupted either way, the bench child on the
    device is stopped (edgekit.transport.agent_client.agent_session)."""
    prepared = prepare_model(model_path, options)
    accelerators_for(prepared, board, options)  # a usage error before the device is touched
    device = board.device
    emit = on_event or (lambda event: None)
    emit({"phase": "connect", "device": device.name})
    transport = device.transport()
    with agent_session(transport, cancel) as client:
        hello = client.hello()
        warn_threads_over_cores(board, options, dict(hello.get("facts") or {}))
        staged = stage_model(transport, prepared)
        params = bench_params(staged, prepared, board, options)
        raw = client.bench(params, on_progress=emit)
    check_accelerators_applied(params, raw, device.name)
    warn_accelerator_outcome(raw)
    result = build_result(
        board=board, hello=hello, prepared=prepared, raw=raw, options=options, transfer=staged.transfer
    )
    emit({"phase": "done", "device": device.name})
    return result


@dataclass(frozen=True)
class StagedModel:
    artifact_path: str  # on the device
    inputs_path: str | None  # the inputs .npz on the device, when one is fed
    transfer: dict[str, Any]  # the result's "transfer" section


def stage_model(transport: Transport, prepared: PreparedModel) -> StagedModel:
    """Put the artifact (and its inputs file) on the device, skipped when the device's copy
    already hashes right; raises DeviceError (exit 3) when the device fails."""
    push_started = time.perf_counter()
    staged = transport.stage_artifact(prepared.artifact)
    push_seconds = time.perf_counter() - push_started
    inputs_path = None
    if prepared.inputs_file is not None:
        inputs_path = transport.stage_file(
            prepared.inputs_file, sha256_file(prepared.inputs_file)
        ).remote_path
    transfer = {
        "bytes_sent": staged.bytes_sent,
        "skipped_cached": staged.skipped_cached,
        "method": staged.method,
        "seconds": round(push_seconds, 4),  # hashing on the board + upload + verify + rename
    }
    return StagedModel(staged.remote_path, inputs_path, transfer)


def bench_params(
    staged: StagedModel, prepared: PreparedModel, board: Board, options: BenchOptions
) -> dict[str, Any]:
    """The `bench` request's params (docs/protocol.md) for a staged model."""
    return {
        "artifact": staged.artifact_path,
        "runtime": options.runtime,
        "threads": _threads(options, board.profile),
        "warmup": options.warmup,
        "runs": options.runs,
        "min_seconds": options.min_seconds,
        "max_seconds": options.max_seconds,
        "inputs": prepared.inputs,
        "inputs_file": staged.inputs_path,
        "seed": options.seed,
        "lock_timeout_s": options.lock_timeout_s,
        "processes": options.processes,
        "rounds": options.resolved_rounds(),
        **sensor_params(board, options),
        **accelerators_for(prepared, board, options),
    }


def accelerators_for(prepared: PreparedModel, board: Board, options: BenchOptions) -> dict[str, Any]:
    """The accelerator bench params (edgekit.core.accelerators.accelerator_params): the flags, else
    the board profile's [accelerators], for the model's runtime. Pure; raises UsageError (exit 2),
    so it is called once before the device is touched."""
    prefs = board.profile.accelerators.prefs()
    return accelerator_params(options.accelerators, prefs, prepared.artifact.format)


def check_accelerators_applied(params: dict[str, Any], raw: dict[str, Any], device: str) -> None:
    """Refuse a reply that ignored providers or a delegate asked for explicitly (an agent older
    than accelerators ignores params it does not know, and would run on the CPU): DeviceError
    (exit 3), so a CPU run is never labelled with the accelerator asked for."""
    if params.get("chosen_by") != "explicit":
        return
    runtime = raw.get("runtime") or {}
    if params.get("providers") and runtime.get("requested_providers") is None:
        asked = "--provider " + ",".join(params["providers"])
    elif params.get("delegate") and runtime.get("delegate") is None:
        asked = "--delegate " + str(params["delegate"])
    else:
        return
    raise DeviceError(
        f"the agent on {device} did not report applying {asked} (an agent older than accelerator "
        "support?); the run is not kept as an accelerator run",
        device=device,
    )


def accelerator_warnings(runtime: dict[str, Any]) -> list[str]:
    """What a run's `runtime` says went differently from what was asked (pure): options a provider
    did not take (runtime.ignored_provider_options), and explicitly requested non-CPU providers
    of which none ran a node (runtime.placement): the numbers are then the CPU's."""
    lines = [
        f"provider {name} did not take option {key}={value} "
        "(onnxruntime ignores options a provider does not know)"
        for name, options in (runtime.get("ignored_provider_options") or {}).items()
        for key, value in options.items()
    ]
    asked = [name for name in runtime.get("requested_providers") or [] if name != "cpu"]
    placement = runtime.get("placement") or {}
    by_provider = placement.get("by_provider") or {}
    if runtime.get("chosen_by") == "explicit" and asked and by_provider:
        cpu = {"CPUExecutionProvider", "cpu", "CPU"}
        if not any((used or {}).get("nodes") for ep, used in by_provider.items() if ep not in cpu):
            total = placement.get("total_nodes") or sum(
                (u or {}).get("nodes") or 0 for u in by_provider.values()
            )
            flags = " ".join(f"--provider {name}" for name in asked)
            lines.append(f"{flags} ran no node of this model (all {total} on the CPU): these are CPU numbers")
    return lines


def warn_accelerator_outcome(raw: dict[str, Any]) -> None:
    """An EdgekitWarning for each line of accelerator_warnings on the reply's runtime."""
    for line in accelerator_warnings(dict(raw.get("runtime") or {})):
        warn(line)


def latency_section(
    latencies_ns: list[int], seed: int, rounds: list[dict[str, Any]] | None = None
) -> Latency:
    """Summary statistics (edgekit.judge.stats), histogram, block medians and rounds of the timed
    inferences; latencies in ns in, every value in ms out. Block medians need >= BLOCKS samples
    (null with the reason below that): they are what the regression gate compares. `rounds` is
    the agent's per-round list (process, pid, started_unix, duration_s, n; the rounds' samples are
    consecutive in latencies_ns); absent (an older agent) the whole window is one round. The p50
    interval is then the hull of the sample bootstrap and the interval over round medians."""
    samples_ms = ns_to_ms(latencies_ns)
    latency = summarize_latencies(samples_ms, seed=seed).to_dict()
    latency["histogram"] = latency_histogram(samples_ms)
    if len(samples_ms) >= BLOCKS:
        latency["block_medians"] = block_medians(samples_ms, BLOCKS)
    else:
        latency["block_medians"] = None
        latency["null_reasons"]["block_medians"] = f"needs >= {BLOCKS} samples, have {len(samples_ms)}"
    records = [dict(r) for r in rounds or [] if int(r.get("n") or 0) > 0]
    if not records or sum(int(r["n"]) for r in records) != len(samples_ms):
        records = [{"process": 0, "n": len(samples_ms)}]
    sample_ci = latency["ci95"].get("p50")
    summary = summarize_rounds(
        samples_ms,
        [int(r["n"]) for r in records],
        [int(r.get("process") or 0) for r in records],
        (sample_ci[0], sample_ci[1]) if sample_ci else None,
    )
    latency["rounds"] = [
        {
            "process": int(r.get("process") or 0),
            "pid": r.get("pid"),
            "started_unix": r.get("started_unix"),
            "duration_s": r.get("duration_s"),
            "n": int(r["n"]),
            "median": median,
        }
        for r, median in zip(records, summary.medians, strict=True)
    ]
    latency["round_spread_pct"] = summary.round_spread_pct
    latency["process_spread_pct"] = summary.process_spread_pct
    latency["process_medians"] = summary.process_medians
    if latency["p50"] is not None:
        latency["ci95"]["p50"] = list(summary.p50_ci95) if summary.p50_ci95 else None
        latency["ci95_p50_method"] = summary.method
    return Latency.model_validate(latency)


def memory_section(raw: dict[str, Any]) -> Memory:
    """Peak and baseline RSS from the agent (bytes), what the model added on top, and the GPU
    memory the agent sampled over the window (gpu_memory: MB, null where the board has none)."""
    memory_raw = raw.get("memory") or {}
    peak, baseline = memory_raw.get("peak_rss_bytes"), memory_raw.get("baseline_rss_bytes")
    return Memory(
        peak_rss_bytes=peak,
        model_rss_delta_bytes=(peak - baseline) if peak is not None and baseline is not None else None,
        baseline_rss_bytes=baseline,
        source=memory_raw.get("source"),
        gpu_memory=memory_raw.get("gpu_memory"),
    )


def thermal_section(raw: dict[str, Any], profile: DeviceProfile) -> Thermal:
    """Temperatures (°C) and throttling at the window's start and end, and whether the run is
    suspect (edgekit.judge.thermal)."""
    return Thermal.model_validate(
        thermal_summary(
            raw.get("sensors_start") or {},
            raw.get("sensors_end") or {},
            profile.sensors.thermal_zone,
            raw.get("thermal_wait"),
        )
    )


def fingerprint_section(
    device: Device, facts: dict[str, Any], runtime: dict[str, Any], artifact: Artifact,
    thermal: Thermal, raw: dict[str, Any],
) -> Fingerprint:  # fmt: skip
    """The run's conditions and their hash (edgekit.judge.fingerprint)."""
    return Fingerprint.model_validate(
        build_fingerprint(
            device.name,
            facts,
            runtime,
            artifact.sha256,
            thermal.model_dump(mode="json"),
            raw.get("sensors_start") or {},
        )
    )


def power_problem(raw: dict[str, Any]) -> str | None:
    """Why no power sensor of the profile works on the board (the agent opened none), or None."""
    energy = raw.get("energy")
    if isinstance(energy, dict) and "sensors_tried" in energy and energy.get("mj_per_inference") is None:
        return str(energy.get("reason") or "no power sensor")
    return None


def budget_section(measured: Measurement, board: Board, raw: dict[str, Any] | None = None) -> BudgetVerdict:
    """The verdict per budgeted metric against the board's budget (the profile's, with overrides),
    with the metrics this board cannot measure at all marked unjudgeable."""
    cannot = unjudgeable_metrics(
        board.budget,
        device=board.device.name,
        emulated=bool(measured.device.emulated),
        power_problem=power_problem(raw or {}),
    )
    return evaluate(measured, board.budget, board.profile.name, cannot)


def build_result(
    *,
    board: Board,
    hello: dict[str, Any],
    prepared: PreparedModel,
    raw: dict[str, Any],
    options: BenchOptions,
    transfer: dict[str, Any],
) -> Result:
    """Assemble the result from the agent's raw bench reply (pure): measure, then judge."""
    device, profile = board.device, board.profile
    facts = dict(hello.get("facts") or {})
    artifact = prepared.artifact
    thermal = thermal_section(raw, profile)
    energy, energy_reason = energy_section(raw)
    runtime = dict(raw.get("runtime") or {})
    fingerprint = fingerprint_section(device, facts, runtime, artifact, thermal, raw)
    measured = Measurement.model_validate(
        {
            "schema": RESULT_SCHEMA,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "edgekit_version": __version__,
            "device": {
                "name": device.name,
                "profile": profile.name,
                "kind": device.kind,
                "agent_version": hello.get("agent_version"),
                **facts,
                "fingerprint": fingerprint.hash,
            },
            "model": {"name": artifact.name, "path": str(artifact.path)},
            "artifact": artifact.to_dict(),
            "runtime": runtime,
            "inputs": prepared.inputs,
            **({"outputs": raw["outputs"]} if raw.get("outputs") is not None else {}),
            "settings": {
                "runs": options.runs,
                "warmup": options.warmup,
                "min_seconds": options.min_seconds,
                "seed": options.seed,
                "inputs_file": str(options.inputs_file) if options.inputs_file else None,
                "processes": int(raw.get("processes") or 1),
                "rounds": options.resolved_rounds() if raw.get("rounds") else 1,
            },
            "latency_ms": latency_section(raw["latencies_ns"], options.seed, raw.get("rounds")),
            "cold_start_ms": raw.get("cold_start_ms"),
            "memory": memory_section(raw),
            "energy": energy,
            "thermal": thermal,
            "window": raw.get("window"),
            "transfer": transfer,
            "fingerprint": fingerprint,
            "null_reasons": {"energy": energy_reason} if energy_reason else {},
        }
    )
    return Result.judged(measured, budget_section(measured, board, raw))
