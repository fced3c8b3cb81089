"""One benchmark, run in the bench child, as named steps (docs/protocol.md, `bench`):

read_settings -> load_model (cold start, memory before/after) -> warm_up -> wait_for_cool ->
open_power -> idle_baseline -> timed_window (sensor snapshots and power samples around it; the
window is `rounds` back-to-back rounds, each recorded with its start time and sample count) ->
measured_energy -> bench_result.

The long-lived agent may run several bench children one after another (child_process.py,
`processes`); each gets its share of runs/min_seconds/max_seconds and splits it over its rounds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from edgekit_agent.child_process import even_share
from edgekit_agent.energy import measured_energy
from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.gpu_memory import GpuMemoryWatch
from edgekit_agent.host import Host
from edgekit_agent.inputs import build_feeds
from edgekit_agent.memory import current_rss, peak_rss
from edgekit_agent.runtimes.choose import accel_settings, open_model, runtime_for
from edgekit_agent.runtimes.input_fault import input_failure
from edgekit_agent.sampler import PowerSampler, Sample
from edgekit_agent.sensors.power import open_first_power_sensor
from edgekit_agent.sensors.readers import PowerReader
from edgekit_agent.sensors.snapshot import sensors_snapshot
from edgekit_agent.thermal_wait import THERMAL_POLL_S, wait_until_cool

PROGRESS_INTERVAL_S = 0.5
IDLE_MAX_SECONDS = 60.0  # the idle baseline matches the planned window, up to this long
TEST_CRASH_ENV = "EDGEKIT_AGENT_TEST_CRASH"  # test hook: the bench child kills itself with this signal

Emit = Callable[[Dict[str, Any]], None]


class BenchSettings(NamedTuple):
    artifact: str
    runtime: str  # "onnxruntime" or "tflite"
    runs: int
    warmup: int
    min_seconds: float
    max_seconds: float
    threads: Optional[int]
    rounds: int  # rounds of this child's timed window (>= 1)
    process: int  # this child's index among the bench's processes (0 = the first)
    accel: Dict[str, Any]  # the runtime's accelerator params (providers, ...), the given ones only
    workdir: Optional[str] = None  # the agent's workdir (the TensorRT engine cache is under it)


class LoadedModel(NamedTuple):
    model: Any
    run: Callable[[], Any]
    first_outputs: Any
    load_ns: int
    first_ns: int
    baseline_rss: Optional[int]
    after_load_rss: Optional[int]
    session_ms: Dict[str, float]  # onnxruntime: session_load, session_init (ms); else {}


class PowerWatch(NamedTuple):
    specs: List[str]
    reader: Optional[PowerReader]
    failures: List[str]
    sampler: Optional[PowerSampler]


class TimedWindow(NamedTuple):
    latencies_ns: List[int]
    rounds: List[Dict[str, Any]]  # per round: process, pid, started_unix, duration_s, n (samples in order)
    started_unix: float
    duration_ns: int
    capped: bool  # a round hit its share of max_seconds
    sensors_start: Dict[str, Any]
    sensors_end: Dict[str, Any]
    busy_samples: List[Sample]
    gpu_memory: Optional[Dict[str, Any]]  # gpu_memory.GpuMemoryWatch over the window, None without


class Progress:
    """Progress events for one bench: elapsed_s counts from the start of the load."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.started = time.perf_counter()

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.emit(
            {
                "event": "progress",
                "phase": phase,
                "done": done,
                "total": total,
                "elapsed_s": round(time.perf_counter() - self.started, 3),
            }
        )

    def event(self, event: Dict[str, Any]) -> None:
        """A free-form progress event (the thermal wait's cooldown)."""
        self.emit(dict(event, event="progress", elapsed_s=round(time.perf_counter() - self.started, 3)))


def read_settings(params: Dict[str, Any], workdir: Optional[str] = None) -> BenchSettings:
    artifact = params.get("artifact")
    if not isinstance(artifact, str) or not artifact:
        raise AgentFailure("BadRequest", "bench needs params.artifact (a path on the device)")
    runs = int(params.get("runs", 100))
    warmup = int(params.get("warmup", 10))
    min_seconds = float(params.get("min_seconds", 2.0))
    max_seconds = float(params.get("max_seconds", 600.0))
    threads = params.get("threads")
    rounds = int(params.get("rounds", 1))
    if rounds < 1:
        raise AgentFailure("BadRequest", "bench params.rounds must be >= 1, got %d" % rounds)
    process = int(params.get("process", 0))
    crash_when_asked()
    runtime = runtime_for(artifact, str(params.get("runtime", "auto")))
    return BenchSettings(
        artifact,
        runtime,
        runs,
        warmup,
        min_seconds,
        max_seconds,
        int(threads) if threads else None,
        rounds,
        process,
        accel_settings(params, runtime),
        workdir,
    )


def crash_when_asked() -> None:
    """Test hook: EDGEKIT_AGENT_TEST_CRASH=SIGSEGV makes the child kill itself with that signal."""
    crash = os.environ.get(TEST_CRASH_ENV)
    if crash:
        os.kill(os.getpid(), getattr(signal, crash))


def load_model(settings: BenchSettings, params: Dict[str, Any]) -> LoadedModel:
    """Load the model and run it once: cold-start times and the memory it costs. onnxruntime
    profiles the session creation only (the split of its load into session_load and
    session_init, the model's session_ms), so no inference is profiled."""
    # Import numpy and the runtime before the baseline so that only the model counts as its delta.
    import numpy  # noqa: F401

    if settings.runtime == "onnxruntime":
        with contextlib.suppress(ImportError):  # open_model reports RuntimeMissing
            import onnxruntime  # noqa: F401

            import edgekit_agent.runtimes.onnx  # noqa: F401  (its imports are not the model's)
    baseline_rss = current_rss()

    t0 = time.perf_counter_ns()
    model = open_model(
        settings.artifact, settings.runtime, settings.threads, settings.accel, settings.workdir
    )
    # onnxruntime: the session creation alone (the model's load_ns), not edgekit's provider
    # resolution before it; TFLite: the interpreter with its delegates
    load_ns = getattr(model, "load_ns", None) or time.perf_counter_ns() - t0
    feeds = build_feeds(params, model.input_names())
    try:
        run = model.make_runner(feeds)
    except Exception as exc:  # TFLite resizes and checks the feeds here
        raise inference_failure(model, exc, feeds) from None
    t0 = time.perf_counter_ns()
    try:
        first_outputs = run()
    except Exception as exc:
        raise inference_failure(model, exc, feeds) from None
    first_ns = time.perf_counter_ns() - t0
    session_ms = dict(getattr(model, "session_ms", {}))
    return LoadedModel(model, run, first_outputs, load_ns, first_ns, baseline_rss, current_rss(), session_ms)


def cold_start_reply(loaded: LoadedModel) -> Dict[str, Any]:
    """The reply's cold_start_ms: load (wall clock), first_inference and, with onnxruntime,
    session_load and session_init from its profile (ms)."""
    return {"load": loaded.load_ns / 1e6, "first_inference": loaded.first_ns / 1e6, **loaded.session_ms}


def inference_failure(model: Any, exc: BaseException, feeds: Dict[str, Any]) -> AgentFailure:
    """InputError when the model rejected the feeds (runtimes/input_fault.py), else InferenceError."""
    failure = input_failure(exc, feeds, model.declared_inputs())
    if failure is not None:
        return failure
    return AgentFailure("InferenceError", "first inference failed: %s" % first_line(exc))


def warm_up(loaded: LoadedModel, warmup: int, progress: Progress) -> float:
    """Run `warmup` inferences; the mean seconds per inference (the first one's when warmup is 0)."""
    run = loaded.run
    next_report = time.perf_counter() + PROGRESS_INTERVAL_S
    started = time.perf_counter()
    for index in range(warmup):
        run()
        if time.perf_counter() >= next_report:
            progress("warmup", index + 1, warmup)
            next_report = time.perf_counter() + PROGRESS_INTERVAL_S
    return (time.perf_counter() - started) / warmup if warmup else loaded.first_ns / 1e9


def wait_for_cool(host: Host, params: Dict[str, Any], progress: Progress) -> Optional[Dict[str, Any]]:
    """The thermal wait when params["max_start_temp_c"] is given, else None."""
    max_start_temp_c = params.get("max_start_temp_c")
    if max_start_temp_c is None:
        return None
    return wait_until_cool(
        host,
        str(params.get("thermal_zone") or ""),
        float(max_start_temp_c),
        float(params.get("thermal_wait_timeout_s", 300.0)),
        float(params.get("thermal_poll_s", THERMAL_POLL_S)),
        progress.event,
    )


def open_power(host: Host, params: Dict[str, Any]) -> PowerWatch:
    """The first working sensor of params["power_sensors"] and a sampler on it (None when none works)."""
    specs = [str(spec) for spec in params.get("power_sensors") or []]
    reader, failures = open_first_power_sensor(host, specs, params.get("sensor_options") or {})
    return PowerWatch(specs, reader, failures, PowerSampler(reader) if reader is not None else None)


def idle_baseline(
    power: PowerWatch, settings: BenchSettings, per_inference_s: float, progress: Progress
) -> List[Sample]:
    """Power samples with no inference, as long as the timed window is planned to be, right before it."""
    if power.sampler is None:
        return []
    idle_s = min(
        max(settings.min_seconds, settings.runs * per_inference_s), settings.max_seconds, IDLE_MAX_SECONDS
    )
    progress("idle", 0, 1)
    power.sampler.start()
    time.sleep(idle_s)
    return list(power.sampler.stop())


def timed_window(
    loaded: LoadedModel,
    settings: BenchSettings,
    host: Host,
    sampler: Optional[PowerSampler],
    progress: Progress,
) -> TimedWindow:
    """Time inferences, each with time.perf_counter_ns, in `settings.rounds` back-to-back rounds.
    Each round goes on until both its share of `runs` (even_share: the shares add up to `runs`)
    is done and its share of `min_seconds` has passed (at least one inference per round), capped
    by its share of `max_seconds` (MLPerf style, per round), so the whole window meets `runs` and
    `min_seconds` and stays under `max_seconds`."""
    rounds = settings.rounds
    runs = settings.runs
    sensors_start = sensors_snapshot(host)
    progress("timed", 0, runs)
    gpu_watch = GpuMemoryWatch()
    gpu_watch.start()
    if sampler is not None:
        sampler.start()
    run = loaded.run
    latencies: List[int] = []
    append = latencies.append
    clock = time.perf_counter_ns
    pid = os.getpid()
    window_start_unix = time.time()
    window_start = clock()
    min_ns = int(settings.min_seconds * 1e9 / rounds)
    max_ns = int(settings.max_seconds * 1e9 / rounds)
    report_every_ns = int(PROGRESS_INTERVAL_S * 1e9)
    next_report_ns = window_start + report_every_ns
    round_records: List[Dict[str, Any]] = []
    capped = False
    for index in range(rounds):
        round_runs = even_share(runs, rounds, index)
        first = len(latencies)
        round_start_unix = time.time()
        round_start = clock()
        while True:
            t0 = clock()
            run()
            t1 = clock()
            append(t1 - t0)
            elapsed = t1 - round_start
            if elapsed >= max_ns:
                capped = True
                break
            if len(latencies) - first >= round_runs and elapsed >= min_ns:
                break
            if t1 >= next_report_ns:
                done = len(latencies)
                progress("timed", done, planned_runs(done, t1 - window_start, runs, settings.min_seconds))
                next_report_ns = t1 + report_every_ns
        round_records.append(
            {
                "process": settings.process,
                "pid": pid,
                "started_unix": round_start_unix,
                "duration_s": (clock() - round_start) / 1e9,
                "n": len(latencies) - first,
            }
        )
    window_ns = clock() - window_start
    busy_samples = sampler.stop() if sampler is not None else []
    gpu_memory = gpu_watch.stop()
    sensors_end = sensors_snapshot(host)
    progress("timed", len(latencies), len(latencies))  # the final count is the total
    return TimedWindow(
        latencies,
        round_records,
        window_start_unix,
        window_ns,
        capped,
        sensors_start,
        sensors_end,
        busy_samples,
        gpu_memory,
    )


def planned_runs(done: int, elapsed_ns: int, runs: int, min_seconds: float) -> int:
    """The timed window's expected number of inferences, for progress: `runs`, or more when
    `min_seconds` will keep it going longer (the rate so far times the seconds still to go), and
    above `done` (the window is still running: one more at least), so that a progress count never
    passes its total and reaches it only with the window's final event."""
    expected = runs
    if elapsed_ns > 0 and done > 0:
        remaining_s = min_seconds - elapsed_ns / 1e9
        if remaining_s > 0:
            expected = max(expected, done + int(done * remaining_s * 1e9 / elapsed_ns))
    return max(expected, done + 1)


def runtime_reply(model: Any) -> Dict[str, Any]:
    """The reply's `runtime` (docs/protocol.md): name, version, threads, providers, and what the
    model's runtime reports of its accelerators (its runtime_info(): ONNX providers asked for,
    options, versions, chosen_by and placement; TFLite delegate, placement and chosen_by)."""
    return {
        "name": model.name,
        "version": model.version,
        "threads": model.threads,
        "providers": model.providers,
        **model.runtime_info(),
    }


def bench_result(
    settings: BenchSettings,
    loaded: LoadedModel,
    window: TimedWindow,
    energy: Dict[str, Any],
    thermal_wait: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    """The bench reply's result (docs/protocol.md); peak RSS is read now, after everything ran."""
    model = loaded.model
    peak, source = peak_rss()
    if peak is not None and loaded.after_load_rss is not None:
        # VmHWM lags by a few pages (proc(5): the kernel's RSS counters are inaccurate, its high
        # water mark is updated lazily); a peak is never below an RSS this process saw
        peak = max(peak, loaded.after_load_rss)
    return {
        "runtime": runtime_reply(model),
        "latencies_ns": window.latencies_ns,
        "rounds": window.rounds,
        "warmup_runs": settings.warmup,
        "cold_start_ms": cold_start_reply(loaded),
        "memory": {
            "baseline_rss_bytes": loaded.baseline_rss,
            "after_load_rss_bytes": loaded.after_load_rss,
            "peak_rss_bytes": peak,
            "source": source,
            "gpu_memory": window.gpu_memory,
        },
        "sensors_start": window.sensors_start,
        "sensors_end": window.sensors_end,
        "energy": energy,
        "thermal_wait": thermal_wait,
        "window": {
            "started_unix": window.started_unix,
            "duration_s": window.duration_ns / 1e9,
            "capped_by_max_seconds": window.capped,
        },
        "outputs": model.outputs(loaded.first_outputs),
    }


def run_bench(
    params: Dict[str, Any], host: Host, emit: Emit, workdir: Optional[str] = None
) -> Dict[str, Any]:
    """One benchmark of params["artifact"]; progress events go to emit, failures raise AgentFailure.
    workdir: the agent's (--workdir), where the TensorRT engine cache lives."""
    settings = read_settings(params, workdir)
    progress = Progress(emit)
    started = time.perf_counter()
    emit({"event": "progress", "phase": "load", "done": 0, "total": 1, "elapsed_s": 0.0})
    loaded = load_model(settings, params)
    loaded_s = round(time.perf_counter() - started, 3)
    emit({"event": "progress", "phase": "load", "done": 1, "total": 1, "elapsed_s": loaded_s})
    per_inference_s = warm_up(loaded, settings.warmup, progress)
    thermal_wait = wait_for_cool(host, params, progress)
    power = open_power(host, params)
    idle_samples = idle_baseline(power, settings, per_inference_s, progress)
    window = timed_window(loaded, settings, host, power.sampler, progress)
    energy = measured_energy(
        power.reader,
        power.sampler,
        power.specs,
        power.failures,
        idle_samples,
        window.busy_samples,
        window.duration_ns / 1e9,
        len(window.latencies_ns),
    )
    return bench_result(settings, loaded, window, energy, thermal_wait)
