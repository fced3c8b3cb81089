"""The bench result as typed models (pydantic v2): what `edgekit bench --json` prints, what the
results store keeps, what compare, check, report and the pytest plugin read.

`Result.to_dict()` is the JSON object (`model_dump(mode="json")` by alias, keeping exactly the
keys that were set: a result loaded from JSON dumps back with the same keys and values, and one
built by edgekit.measure.bench has the keys it always had). `result_json_schema()` is its JSON
Schema, generated into docs/schema/result.schema.json by scripts/schemas.py (never edited by
hand; a test fails when the committed file and the models differ).

Units are in the field descriptions: milliseconds (ms), bytes, millijoules (mJ), joules (J),
watts (W), degrees Celsius (°C), kilohertz (kHz), seconds (s).

Versioning (results-versioning)
-------------------------------
Every result carries `schema`, an int: RESULT_SCHEMA for results this edgekit writes.
- Adding an optional field (one with a default, absent in older results) does NOT bump it: older
  results load with the default, and an older edgekit keeps the new field as an extra (below).
- Renaming or removing a field, or changing what a field means or its unit, DOES bump it. The
  bump comes with one step in `_UPGRADES` (version N -> N+1, a pure function on the JSON object);
  `upgrade()` applies every step from the result's version up to RESULT_SCHEMA, so every older
  version is upgraded in this one function and loaded as today's model.
- A result whose `schema` is newer than RESULT_SCHEMA is refused with a one-line error (the
  caller's error class: StoreError for a stored run, UsageError for a file): this edgekit cannot
  know what the newer fields mean.

Unknown keys are kept (`extra="allow"` on every model), for three reasons: adding a field does
not bump the schema, so a result written by a newer edgekit of the same schema must pass through
an older one (history --json, compare, a re-stored run) without losing that field; device facts
and power-sensor descriptions vary per board and agent version, so only the known ones can be
modelled; and the store promises to keep every run whole. The price, a misspelt key not being
rejected, is small: results are written by edgekit, not by hand.

Every run stored by the edgekit that first wrote schema 1 loads: tests/data/results_v1/ holds a
store and JSON files it wrote, and tests/unit/test_result_schema.py loads, compares and reports
them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from edgekit.core.errors import EdgekitError, UsageError

RESULT_SCHEMA = 1

# A JSON number kept as it came: an int stays an int (a budget limit of 5 is not turned into 5.0).
Real = Annotated[int | float, WithJsonSchema({"type": "number"})]


class _Model(BaseModel):
    """Every result model: unknown keys kept (see the module doc), field names as in the JSON."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the keys that were set (loaded or built), by alias."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# --- device ----------------------------------------------------------------------------------


class ThrottleState(_Model):
    """A board's throttle source at one moment (Raspberry Pi firmware get_throttled, Jetson...)."""

    value: bool | None = Field(None, description="Throttled now; null when the board cannot tell.")
    source: str | None = Field(None, description="Where the state was read (e.g. 'vcgencmd').")
    reason: str | None = Field(None, description="Why value is null.")
    raw: str | None = Field(None, description="Raw firmware bits, hex (get_throttled).")


class Device(_Model):
    """The device the run was made on: inventory name, profile, and the facts its agent reported
    (flattened in; they vary per board, so only the known ones are typed and others are kept)."""

    name: str = Field(description="Inventory name of the device ('local' for this machine).")
    profile: str | None = Field(None, description="Device profile whose budgets judged the run.")
    kind: str | None = Field(None, description="Transport kind: local, ssh.")
    agent_version: str | None = Field(None, description="Version of the edgekit agent on the board.")
    hostname: str | None = None
    machine: str | None = Field(None, description="CPU architecture (platform.machine()).")
    system: str | None = None
    kernel: str | None = None
    python: str | None = Field(None, description="Python version on the board.")
    cpu_model: str | None = None
    cores: int | None = Field(None, description="CPU count (os.cpu_count()).")
    cores_online: list[int] | None = Field(None, description="Online CPU numbers.")
    memory_total_bytes: int | None = Field(None, description="MemTotal, bytes.")
    memory_available_bytes: int | None = Field(None, description="MemAvailable at the start, bytes.")
    workdir: str | None = Field(None, description="The agent's work directory on the board.")
    disk_free_bytes: int | None = Field(None, description="Free disk in workdir, bytes.")
    board_model: str | None = Field(None, description="Device-tree model string (ARM boards).")
    governor: str | None = Field(None, description="cpufreq governor of the first CPU.")
    cur_freq_khz: int | None = Field(None, description="scaling_cur_freq of the first CPU, kHz.")
    max_freq_khz: int | None = Field(None, description="scaling_max_freq of the first CPU, kHz.")
    runtimes: dict[str, str | None] | None = Field(None, description="Runtime package -> version.")
    numpy: str | None = Field(None, description="numpy version on the board.")
    temperatures_c: dict[str, Real | None] | None = Field(
        None, description="'zone:type' -> temperature at hello time, °C."
    )
    throttled: ThrottleState | None = None
    emulated: bool | None = Field(None, description="An emulated board (edgekit lab, qemu).")
    emulation: dict[str, Any] | None = Field(None, description="What emulates the board.")
    power_mode: str | None = Field(None, description="Jetson power mode at hello (nvpmodel -q), e.g. 25W.")
    power_mode_id: int | None = Field(None, description="Its id in the board's /etc/nvpmodel.conf.")
    jetson_clocks: bool | None = Field(
        None,
        description="jetson_clocks on (jetson_clocks --show); null when unknown (not root, not a Jetson).",
    )
    fingerprint: str | None = Field(None, description="Hash of the run's fingerprint.")


# --- model and artifact ----------------------------------------------------------------------


class ModelRef(_Model):
    name: str = Field(description="Model name: the artifact's name (file stem or artifact dir).")
    path: str | None = Field(None, description="Path benchmarked, as given on the host.")


class Quality(_Model):
    """What compression cost, from the artifact manifest's fidelity report."""

    accuracy: float | None = Field(None, description="Accuracy after compression, fraction 0-1.")
    accuracy_drop_points: float | None = Field(None, description="Accuracy lost, percentage points.")
    top1_agreement: float | None = Field(None, description="Top-1 agreement with the source, 0-1.")
    cosine_mean: float | None = Field(None, description="Mean output cosine similarity to the source.")


class ArtifactFileInfo(_Model):
    name: str = Field(description="Path relative to the model's directory (external data: its location).")
    sha256: str | None = Field(None, description="sha256 of this file, hex.")
    size_bytes: int | None = Field(None, description="Size of this file, bytes.")


class ArtifactInfo(_Model):
    sha256: str = Field(
        description="sha256 of the artifact, hex: the model file's, or with external data the sha256 "
        "of the `sha256sum` listing of its files (edgekit.core.artifacts.artifact_sha256)."
    )
    size_bytes: int | None = Field(None, description="Size of the model file plus its data files, bytes.")
    files: list[ArtifactFileInfo] | None = Field(
        None, description="The model file first, then its external data files sorted by location."
    )
    format: str | None = Field(None, description="onnx or tflite.")
    recipe: list[Any] = Field(default_factory=list, description="Compression steps (manifest recipe).")
    name: str | None = None
    path: str | None = None
    source_name: str | None = Field(None, description="Model the artifact was compressed from.")
    quality: Quality | None = None


class ProviderPlacement(_Model):
    """What one execution provider (or TFLite delegate, or the CPU) executed."""

    nodes: int = Field(
        description="Graph nodes it executed: the original nodes inside a fused or compiled subgraph "
        "(source assignment_info, tflite_ops); source verbose_log counts a compiled subgraph as 1."
    )
    subgraphs: int | None = Field(None, description="Subgraphs (partitions) assigned to it.")
    op_types: dict[str, int] | None = Field(None, description="Op type -> nodes of that type.")


class Placement(_Model):
    """Which provider ran which nodes, read from the runtime (never from session.get_providers(),
    which lists a provider that got no node)."""

    source: str | None = Field(
        None,
        description="assignment_info (onnxruntime >= 1.24 graph assignment info), verbose_log "
        "(onnxruntime's session log, older versions) or tflite_ops (the interpreter's op list).",
    )
    total_nodes: int | None = Field(None, description="Nodes of the graph as placed.")
    by_provider: dict[str, ProviderPlacement] | None = Field(
        None, description="Provider (onnxruntime EP name, TFLite delegate or CPU) -> what it executed."
    )
    accelerated_fraction: Real | None = Field(
        None, description="Fraction 0-1 of the nodes executed by a provider other than the CPU."
    )


class DelegateInfo(_Model):
    """The TFLite delegate(s) asked for and applied."""

    requested: str | None = Field(
        None, description="default, xnnpack, none, gpu, edgetpu or a delegate library path."
    )
    applied: list[str] | None = Field(None, description="Delegates that took part of the graph.")
    default_applied: bool | None = Field(
        None, description="The interpreter applied its default delegate (XNNPACK) on its own."
    )
    threads: int | None = Field(None, description="Threads the delegate was given.")


class EngineCache(_Model):
    """The TensorRT engine cache on the board (agent workdir)."""

    dir: str | None = Field(None, description="Cache directory, relative to the agent's workdir.")
    hit: bool | None = Field(None, description="An engine was already cached (not built in this run).")
    size_bytes: int | None = Field(None, description="Size of the cache directory, bytes.")
    evicted: int | None = Field(
        None, description="Least recently used cache directories deleted to stay under the size cap."
    )


class Runtime(_Model):
    name: str | None = Field(None, description="onnxruntime, tflite_runtime, ai_edge_litert.")
    version: str | None = None
    threads: int | None = Field(None, description="Intra-op threads (null: the runtime's default).")
    providers: list[str] | None = Field(
        None,
        description="onnxruntime execution providers the session lists (session.get_providers(): "
        "one may have run no node; see placement).",
    )
    requested_providers: list[str] | None = Field(
        None, description="edgekit provider names asked for (--provider or the profile), in order."
    )
    provider_options: dict[str, dict[str, str]] | None = Field(
        None,
        description="Provider -> options as applied: what the session reports (defaults "
        "included, cache paths relative).",
    )
    ignored_provider_options: dict[str, dict[str, str]] | None = Field(
        None,
        description="Provider -> options given but not applied (the session does not report "
        "them: onnxruntime ignores options a provider does not know).",
    )
    provider_versions: dict[str, str] | None = Field(
        None, description="Provider library (package or SDK) -> version."
    )
    chosen_by: str | None = Field(
        None, description="Where the providers came from: explicit (--provider), profile or default."
    )
    placement: Placement | None = None
    delegate: DelegateInfo | None = None
    engine_cache: EngineCache | None = None


class TensorSpec(_Model):
    shape: list[int] = Field(description="Concrete input shape.")
    dtype: str = Field(description="numpy dtype name, e.g. float32.")


class OutputSpec(_Model):
    """One model output as the runtime returned it on the first inference (the agent's
    runtimes/describe.py): a tensor, a sequence (its length and first elements), a map (length,
    key and value dtypes), an optional (present or not) or a scalar."""

    name: str = Field(description="Output name in the model.")
    kind: str = Field(description="tensor, sequence, map, optional or scalar.")
    shape: list[int] | None = Field(None, description="Concrete shape (tensor, scalar: []).")
    dtype: str | None = Field(None, description="numpy dtype name (tensor), type name (scalar).")
    length: int | None = Field(None, description="Elements (sequence) or entries (map).")
    elements: list[dict[str, Any]] | None = Field(None, description="Sequence: the first elements described.")
    key_dtype: str | None = Field(None, description="Map: the keys' type.")
    value_dtype: str | None = Field(None, description="Map: the values' type.")
    present: bool | None = Field(None, description="Optional: whether a value was returned.")
    value: dict[str, Any] | None = Field(None, description="Optional and present: the value described.")


class Settings(_Model):
    runs: int = Field(description="Timed inferences asked for (at least).")
    warmup: int = Field(description="Untimed inferences before timing.")
    min_seconds: Real = Field(description="Minimum timed window, s.")
    seed: int = Field(description="Seed of generated inputs and of the bootstrap.")
    inputs_file: str | None = Field(None, description="The .npz of inputs, when given.")
    processes: int | None = Field(
        None, description="Fresh bench child processes the timed window was spread over (older runs: 1)."
    )
    rounds: int | None = Field(None, description="Timed rounds per process (older runs: 1).")


# --- latency ---------------------------------------------------------------------------------


class Outliers(_Model):
    low: int = Field(description="Samples below Q1 - 1.5 IQR.")
    high: int = Field(description="Samples above Q3 + 1.5 IQR.")
    beyond_3_mad: int = Field(description="Samples beyond median +- 3 MAD.")
    rule: str = "tukey-1.5iqr"


class Histogram(_Model):
    edges_ms: list[float] = Field(description="Log-spaced bin edges, ms (len(counts) + 1).")
    counts: list[int] = Field(description="Samples per bin.")


class Round(_Model):
    """One timed round of the bench (consecutive samples of one bench child process)."""

    process: int = Field(description="Index of the bench process (0 = the first, fresh child).")
    pid: int | None = Field(None, description="Process id of that bench child on the device.")
    started_unix: Real | None = Field(None, description="Start of the round, unix time, s.")
    duration_s: Real | None = Field(None, description="Length of the round, s.")
    n: int = Field(description="Timed inferences in the round (consecutive in latency samples).")
    median: float = Field(description="Median latency of the round, ms.")


class Latency(_Model):
    """Per-inference latency statistics, all in ms (edgekit.judge.stats)."""

    n: int = Field(description="Timed inferences.")
    p50: float | None = Field(description="Median, ms; null below 13 samples (see null_reasons).")
    p90: float | None = Field(description="90th percentile, ms; null below 64 samples.")
    p99: float | None = Field(description="99th percentile, ms; null below 662 samples.")
    mean: float = Field(description="Mean, ms.")
    std: float | None = Field(description="Sample standard deviation, ms; null below 2 samples.")
    min: float = Field(description="Fastest inference, ms.")
    max: float = Field(description="Slowest inference, ms.")
    mad: float = Field(description="Median absolute deviation (raw), ms.")
    ci95: dict[str, list[float] | None] = Field(
        description="95% confidence interval [low, high] per percentile, ms: p90 a bootstrap over the"
        " samples; p50 the hull of that bootstrap and the interval over round medians (ci95_p50_method)."
    )
    outliers: Outliers
    null_reasons: dict[str, str] = Field(default_factory=dict, description="Statistic -> why it is null.")
    histogram: Histogram | None = None
    block_medians: list[float] | None = Field(
        None, description="Median of each of 10 consecutive blocks, ms: what the regression gate compares."
    )
    rounds: list[Round] | None = Field(
        None, description="Each timed round, in time order (absent in runs before rounds were recorded)."
    )
    round_spread_pct: float | None = Field(
        None, description="Between-round spread: std of the round medians over their median, %; null below 2."
    )
    process_spread_pct: float | None = Field(
        None, description="Between-process spread: std of process medians over their median, %; null below 2."
    )
    process_medians: list[float] | None = Field(
        None, description="Median of all samples of each bench process, by process index, ms."
    )
    ci95_p50_method: str | None = Field(None, description="How ci95.p50 was computed (edgekit.judge.stats).")


class ColdStart(_Model):
    load: Real | None = Field(None, description="Model load (session creation, wall clock), ms.")
    first_inference: Real | None = Field(None, description="First inference after load, ms.")
    session_load: Real | None = Field(
        None, description="Of load: reading and parsing the model (onnxruntime's model_loading_uri), ms."
    )
    session_init: Real | None = Field(
        None,
        description="Of load: optimizing, partitioning and compiling for the providers, TensorRT "
        "engine build or deserialization included (onnxruntime's session_initialization), ms.",
    )


class GpuMemory(_Model):
    """GPU memory over the timed window. On Jetson the GPU shares the RAM: tegrastats' `RAM used`
    is system-wide (CPU and GPU, all processes), not this process."""

    peak_mb: Real | None = Field(None, description="Peak GPU (Jetson: unified RAM) memory used, MB.")
    source: str | None = Field(None, description="tegrastats (Jetson, system-wide) or nvml (discrete GPU).")
    scope: str | None = Field(None, description="system (all processes) or process (this bench process).")
    samples: int | None = Field(None, description="Samples the peak was taken over.")


class Memory(_Model):
    peak_rss_bytes: int | None = Field(None, description="Peak resident memory of the bench process, bytes.")
    model_rss_delta_bytes: int | None = Field(None, description="Peak minus baseline RSS, bytes.")
    baseline_rss_bytes: int | None = Field(None, description="RSS before the model was loaded, bytes.")
    source: str | None = Field(None, description="Where the peak was read (e.g. procfs:VmHWM).")
    reason: str | None = Field(None, description="Why peak_rss_bytes is null.")
    gpu_memory: GpuMemory | None = Field(
        None, description="GPU memory over the timed window; null where the board reports none."
    )


class Energy(_Model):
    """Energy measured by a power sensor (the agent's sensor description is kept as extras)."""

    mj_per_inference: Real = Field(description="Energy per inference above idle, mJ.")
    mj_per_inference_uncertainty: Real | None = Field(None, description="Its standard uncertainty, mJ.")
    total_energy_j: Real | None = Field(None, description="Energy over the timed window, J.")
    energy_above_idle_j: Real | None = Field(None, description="Of which above idle, J.")
    avg_power_w: Real | None = Field(None, description="Mean power in the timed window, W.")
    idle_power_w: Real | None = Field(None, description="Mean idle power, W.")
    avg_power_uncertainty_w: Real | None = None
    idle_power_uncertainty_w: Real | None = None
    window_s: Real | None = Field(None, description="Timed window, s.")
    idle_window_s: Real | None = Field(None, description="Idle window, s.")
    inferences: int | None = None
    sample_count: int | None = Field(None, description="Power samples in the timed window.")
    idle_sample_count: int | None = None
    method: str | None = Field(None, description="counter-difference or trapezoid.")
    sensor: str | None = Field(None, description="The sensor that measured.")


class ThermalWait(_Model):
    """The agent's wait for the board to cool below max_start_temp_c before timing."""

    max_start_temp_c: Real | None = Field(None, description="°C.")
    zone: str | None = None
    start_temp_c: Real | None = Field(None, description="Temperature when timing started, °C.")
    waited_s: Real | None = Field(None, description="s.")
    timed_out: bool = False
    met: bool | None = Field(
        None,
        description="Timing started below max_start_temp_c; false when it did not or the zones read "
        "only invalid values (never met by an invalid sensor); null when the board has no thermal "
        "zones, and in results stored before this field.",
    )
    reason: str | None = Field(None, description="Why start_temp_c is null.")


class ThermalZone(_Model):
    """One thermal zone at the window's start and end. A disconnected or power-gated sensor (e.g.
    Jetson's -256 °C, an unpowered 0 °C, above 150 °C) reads null with the reason."""

    zone: str | None = Field(None, description="sysfs zone, e.g. 'thermal_zone0'.")
    type: str | None = Field(None, description="The zone's type, e.g. 'cpu-thermal'.")
    covers_cpu: bool | None = Field(None, description="The zone measures the CPU.")
    start_c: Real | None = Field(None, description="°C at the start of the window.")
    end_c: Real | None = Field(None, description="°C at the end of the window.")
    null_reasons: dict[str, str] | None = Field(None, description="Field -> why it is null.")


class Thermal(_Model):
    start_c: Real | None = Field(None, description="Watched zone at the start of the window, °C.")
    end_c: Real | None = Field(None, description="Watched zone at the end of the window, °C.")
    zone: str | None = Field(None, description="Thermal zone type watched, or 'hottest'.")
    throttled: bool | None = Field(None, description="Throttled during the window; null: cannot tell.")
    throttle_start: ThrottleState | None = None
    throttle_end: ThrottleState | None = None
    wait: ThermalWait | None = None
    suspect: bool = Field(False, description="Throttled or started hot: not to be compared.")
    suspect_reasons: list[str] = Field(default_factory=list)
    null_reasons: dict[str, str] | None = Field(None, description="Field -> why it is null.")
    zones: list[ThermalZone] | None = Field(
        None, description="Every zone (null in results stored before this field)."
    )


class Window(_Model):
    started_unix: Real | None = Field(None, description="Start of the timed window, unix time, s.")
    duration_s: Real | None = Field(None, description="Length of the timed window, s.")
    capped_by_max_seconds: bool | None = None


class Transfer(_Model):
    bytes_sent: int | None = Field(None, description="Bytes uploaded to the board.")
    skipped_cached: bool | None = Field(None, description="The board had the artifact already.")
    method: str | None = None
    seconds: Real | None = Field(None, description="Hashing on the board + upload + verify, s.")


class Fingerprint(_Model):
    """What must match for two runs to be comparable (edgekit.judge.fingerprint)."""

    device: str | None = None
    machine: str | None = None
    cpu_model: str | None = None
    cores: int | None = None
    python: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    providers: list[str] | None = None
    threads: int | None = None
    governor: str | None = None
    cur_freq_khz: int | None = Field(None, description="kHz.")
    max_freq_khz: int | None = Field(None, description="kHz.")
    artifact_sha256: str | None = None
    temp_start_c: Real | None = Field(None, description="°C (recorded, not matched).")
    temp_end_c: Real | None = Field(None, description="°C (recorded, not matched).")
    throttled: bool | None = None
    providers_used: list[str] | None = Field(
        None, description="Providers that executed at least one node (runtime.placement), sorted."
    )
    provider_options: dict[str, dict[str, str]] | None = Field(
        None, description="runtime.provider_options without options naming a path on the board."
    )
    provider_versions: dict[str, str] | None = Field(None, description="Provider library -> version.")
    delegate: list[str] | None = Field(None, description="TFLite delegates applied, sorted ([]: none).")
    power_mode: str | None = Field(None, description="Jetson power mode (nvpmodel -q), e.g. 25W.")
    jetson_clocks: bool | None = Field(None, description="Jetson clocks pinned at maximum (jetson_clocks).")
    accelerated_fraction: Real | None = Field(
        None, description="runtime.placement.accelerated_fraction (recorded, not matched)."
    )
    hash: str = Field("", description="sha256 (16 hex digits) over the comparable keys.")

    def comparable(self) -> dict[str, Any]:
        """The fingerprint as the plain dict edgekit.judge.fingerprint works on."""
        return self.model_dump(mode="json")


# --- budget ----------------------------------------------------------------------------------


class BudgetCheck(_Model):
    metric: str = Field(description="A budget metric, e.g. latency_p50_ms, peak_rss_mb.")
    limit: Real = Field(description="The budget, in the metric's unit (ms, MiB, mJ).")
    value: Real | None = Field(description="Measured, in the metric's unit; null when unknown.")
    verdict: str = Field(description="pass, fail or unknown.")
    reason: str | None = Field(None, description="Why the verdict is unknown.")
    unjudgeable: bool | None = Field(
        None,
        description="True when this device cannot measure the metric at all (no power sensor, an "
        "emulated board's timings): unknown on every run here, so --strict fails until the budget "
        "is dropped (--budget METRIC=none).",
    )


class BudgetVerdict(_Model):
    verdict: str = Field(description="fail if any check fails, else unknown if any is unknown, else pass.")
    checks: list[BudgetCheck] = Field(default_factory=list)
    profile: str | None = Field(None, description="Profile whose budgets these are.")


# --- the result ------------------------------------------------------------------------------


class FleetCell(_Model):
    """Set on runs made by `edgekit fleet run`: which plan cell the run is."""

    plan: str | None = None
    plan_run_id: str | None = None
    model: str | None = None
    recipe: str | None = None


class AbRun(_Model):
    """Set on the two runs of one interleaved A/B comparison (`edgekit compare --device`)."""

    ab_id: str = Field(description="Shared by the baseline and candidate runs of one A/B comparison.")
    role: str = Field(description="baseline or candidate.")
    rounds: int | None = Field(None, description="Round pairs timed (each side one round per pair).")
    order: str | None = Field(None, description="Round order within two pairs, e.g. ABBA.")


class Measurement(_Model):
    """Everything a run measured, before it is judged against a budget."""

    schema_version: int = Field(
        alias="schema", description="Result schema version (see edgekit.core.result)."
    )
    created_at: str = Field(description="When the result was built, ISO 8601 with UTC offset.")
    edgekit_version: str | None = None
    device: Device
    model: ModelRef
    artifact: ArtifactInfo
    runtime: Runtime | None = None
    inputs: dict[str, TensorSpec] | None = Field(None, description="Input name -> shape and dtype.")
    outputs: list[OutputSpec] | None = Field(
        None, description="Model outputs as the first inference returned them (absent in older results)."
    )
    settings: Settings | None = None
    latency_ms: Latency
    cold_start_ms: ColdStart | None = None
    memory: Memory | None = None
    energy: Energy | None = Field(None, description="null when not measured (see null_reasons).")
    thermal: Thermal | None = None
    window: Window | None = None
    transfer: Transfer | None = None
    fingerprint: Fingerprint | None = Field(None, description="Absent only in hand-made results.")
    null_reasons: dict[str, str] = Field(
        default_factory=dict, description="Section -> why it is null (energy)."
    )

    @property
    def created(self) -> datetime:
        """created_at as an aware datetime (UTC when the text has no offset)."""
        moment = datetime.fromisoformat(self.created_at)
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    @property
    def suspect(self) -> bool:
        """Throttled during its window or started hot (edgekit.judge.thermal)."""
        return bool(self.thermal and (self.thermal.suspect or self.thermal.throttled))


class Result(Measurement):
    """One benchmark run on one device, judged against the device profile's budgets."""

    model_config = ConfigDict(title="edgekit bench result")

    budget: BudgetVerdict
    # Set after the run is judged; last, as the JSON has always had them.
    run_id: str | None = Field(None, description="Set when stored in a results store.")
    fleet: FleetCell | None = None
    optimize: dict[str, Any] | None = Field(None, description="Set on runs made by `edgekit optimize`.")
    ab: AbRun | None = Field(None, description="Set on the runs of an interleaved A/B comparison.")

    @classmethod
    def judged(cls, measurement: Measurement, budget: BudgetVerdict) -> Result:
        """The measurement with its budget verdict (the keys set on measurement stay set)."""
        data = measurement.to_dict()
        data["budget"] = budget.to_dict()
        return cls.model_validate(data)

    @property
    def verdict(self) -> str:
        return self.budget.verdict


# --- loading, versioning, JSON Schema --------------------------------------------------------

# Step N: upgrades a schema-N result (a JSON object) to schema N+1. Append one when bumping.
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upgrade(data: Mapping[str, Any], where: str, error: type[EdgekitError] = UsageError) -> dict[str, Any]:
    """A result JSON object of any known schema, brought to RESULT_SCHEMA (a new dict).

    Raises `error` (one line, naming `where`) when the schema is missing, not an int, or newer than
    this edgekit knows.
    """
    version = data.get("schema")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise error(f"{where}: not an edgekit result (no schema version)", where=where)
    if version > RESULT_SCHEMA:
        raise error(
            f"{where}: result schema {version} is newer than this edgekit knows ({RESULT_SCHEMA}); "
            "upgrade edgekit",
            where=where,
            schema=version,
        )
    upgraded = dict(data)
    for step in range(version, RESULT_SCHEMA):
        upgraded = _UPGRADES[step](upgraded)
        upgraded["schema"] = step + 1
    return upgraded


def load_result(data: Any, where: str, error: type[EdgekitError] = UsageError) -> Result:
    """A Result from a JSON object of any known schema (upgraded first).

    Raises `error` with one line naming `where` when it is not a result, is of a newer schema, or
    does not match the model (the first problem is named).
    """
    if not isinstance(data, Mapping):
        raise error(f"{where}: not an edgekit result (a JSON object is expected)", where=where)
    upgraded = upgrade(data, where, error)
    try:
        return Result.model_validate(upgraded)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise error(
            f"{where}: not a valid edgekit result: {path}: {first['msg']} ({exc.error_count()} problem(s))",
            where=where,
        ) from None


def result_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a result, as validated on load (docs/schema/)."""
    schema = Result.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "description": f"An edgekit bench result, schema {RESULT_SCHEMA} (see edgekit/core/result.py).",
    }
