"""What a report shows, derived from stored results: pure functions, no I/O.

- which runs: `--since`, `--device`, `--model` filters, oldest first;
- the latest run of each (device, model, recipe): the summary rows;
- history per (device, model): each run judged against the recent history of its series (same
  device, model, artifact and comparable fingerprint), so a step is marked once, where it happened
  (`histories`);
- trade-offs per device: size, latency and accuracy of each recipe's latest run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from edgekit.core.durations import parse_duration_s
from edgekit.core.errors import UsageError
from edgekit.core.result import Quality, Result
from edgekit.judge.compare import SeriesKey, comparability, series_key
from edgekit.judge.fingerprint import differences
from edgekit.judge.regression import (
    BOUNDARY_FRACTION,
    DEFAULT_THRESHOLD,
    MIN_NOISE_RUNS,
    robust_location_scale,
)


def parse_since(text: str, now: datetime) -> datetime:
    """`7d`, `12h`, `30m`, `2w` before `now`, or an ISO date / date-time (UTC unless it says)."""
    value = text.strip()
    seconds = parse_duration_s(value) if value[-1:].isalpha() else None
    if seconds is not None:
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a duration like 7d, 12h, 30m, 2w or a date like 2026-11-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def created_at(result: Result) -> datetime:
    """When the run was made, an aware datetime (UTC when created_at has no offset)."""
    return result.created


@dataclass(frozen=True)
class ReportFilter:
    since: datetime | None = None
    devices: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def keeps(self, result: Result) -> bool:
        if self.since is not None and created_at(result) < self.since:
            return False
        if self.devices and device_of(result) not in self.devices:
            return False
        return not self.models or model_of(result) in self.models or base_model_of(result) in self.models

    def describe(self) -> str:
        parts = []
        if self.since is not None:
            parts.append(f"since {self.since.isoformat(timespec='minutes')}")
        if self.devices:
            parts.append(f"devices {', '.join(self.devices)}")
        if self.models:
            parts.append(f"models {', '.join(self.models)}")
        return "; ".join(parts) or "all stored runs"


def device_of(result: Result) -> str:
    return result.device.name


def model_of(result: Result) -> str:
    return result.model.name


def base_model_of(result: Result) -> str:
    """The model a run's artifact was made from: the fleet cell's model, the manifest's source, or
    the model itself (an uncompressed file)."""
    fleet_model = result.fleet.model if result.fleet is not None else None
    if fleet_model:
        return re.sub(r"\.(onnx|tflite)$", "", str(fleet_model).rsplit("/", 1)[-1])
    return str(result.artifact.source_name or model_of(result))


def recipe_of(result: Result) -> str:
    fleet_recipe = result.fleet.recipe if result.fleet is not None else None
    if fleet_recipe:
        return str(fleet_recipe)
    steps = result.artifact.recipe
    names = [str(step.get("name", "?")) if isinstance(step, dict) else str(step) for step in steps]
    return "+".join(names) or "as-is"


def select(results: Iterable[Result], chosen: ReportFilter) -> list[Result]:
    """The results the filter keeps, oldest first."""
    return sorted((r for r in results if chosen.keeps(r)), key=created_at)


def latest_per_cell(results: Sequence[Result]) -> list[Result]:
    """The newest run of each (device, model, recipe), ordered by device then model."""
    latest: dict[tuple[str, str, str], Result] = {}
    for result in results:  # oldest first: later ones replace earlier ones
        latest[(device_of(result), model_of(result), recipe_of(result))] = result
    return [latest[key] for key in sorted(latest)]


# The history gate's constants (report and check): a run is judged against the last
# HISTORY_WINDOW comparable runs before it in its series, needs at least HISTORY_MIN of them
# (fewer: "insufficient-data"), and is flagged when its log p50 lies more than Z_LIMIT robust
# SDs from the window's median AND its change reaches the effect boundary (half the threshold).
# A run beyond the limit starts a possible step; later runs beyond half the limit on the same side
# continue it (never flagged again), and CHANGE_POINT_RUNS such runs in a row are a step: the
# window restarts at the first of them, so the step is flagged once, where it happened. No run
# is flagged alone: the first run beyond the limit is "insufficient-data" (not confirmed) until the
# series' next run continues the step (then the first run is flagged, "confirmed by run Y") or
# comes back within the noise (then it was a lone outlier: "unchanged"). Run-to-run noise on a
# shared machine is heavy-tailed: one run in a slow moment looks like a step.
HISTORY_WINDOW = 20
HISTORY_MIN = MIN_NOISE_RUNS
Z_LIMIT = 4.5
CHANGE_POINT_RUNS = 3


@dataclass(frozen=True)
class HistoryEntry:
    result: Result
    verdict: str  # regression | improvement | unchanged | not-comparable | insufficient-data | first
    reason: str
    baseline_run_id: str | None  # the run before it in its series (None: the first)
    change: float | None = None  # latency p50 vs the window's median, relative (+0.1 = 10% slower)
    window_runs: int = 0  # how many runs it was judged against


@dataclass
class History:
    device: str
    model: str
    entries: list[HistoryEntry] = field(default_factory=list)

    @property
    def regressions(self) -> list[HistoryEntry]:
        return [e for e in self.entries if e.verdict == "regression"]


@dataclass
class _Series:
    """The running state of one series (series_key) while its runs are judged oldest first."""

    runs: list[Result] = field(default_factory=list)  # comparable, not suspect, with a p50
    start: int = 0  # the window starts here (moved by a step)
    scale: float | None = None  # sigma of the last window with >= HISTORY_MIN runs
    streak: list[int] = field(default_factory=list)  # indexes of runs beyond the limit in a row
    streak_side: int = 0
    streak_change: float = 0.0
    pending: _Pending | None = None  # a flag that waits for the next run to confirm it


@dataclass(frozen=True)
class _Pending:
    """A run beyond the limit, entered as not confirmed: `entries[index]`, to become `verdict`
    with `reason` when the next run of its series continues the step."""

    entries: list[HistoryEntry]
    index: int
    verdict: str
    reason: str

    def confirm(self, by: Result) -> None:
        entry = self.entries[self.index]
        reason = f"{self.reason}; confirmed by run {(by.run_id or '?')[:12]}"
        self.entries[self.index] = replace(entry, verdict=self.verdict, reason=reason)

    def clear(self, by: Result) -> None:
        entry = self.entries[self.index]
        back = f"the next run, {(by.run_id or '?')[:12]}, was back within the noise"
        reason = f"a lone outlier, {self.reason}; {back}"
        self.entries[self.index] = replace(entry, verdict="unchanged", reason=reason)


def histories(results: Sequence[Result], thresholds: dict[str, float] | None = None) -> list[History]:
    """Per (device, model), oldest first: each run judged against the recent history of its
    series (edgekit.judge.compare.series_key: device, model, artifact and the full comparable
    fingerprint). Statistic: robust z of the run's log p50 against the median and 1.4826 * MAD
    of the last HISTORY_WINDOW runs of its series before it (edgekit.judge.regression.
    robust_location_scale); flagged when |z| > Z_LIMIT and the change reaches half the threshold.
    A step is flagged once: later runs on the same side continue it ("in the step since run X"),
    and after CHANGE_POINT_RUNS of them the window restarts at the step. Fewer than HISTORY_MIN
    runs before it: "insufficient-data". A run whose conditions differ from the run before it
    (a new series), without a fingerprint, or suspect (throttled) is "not-comparable"."""
    threshold = (thresholds or {}).get("latency_p50_ms", (thresholds or {}).get("*", DEFAULT_THRESHOLD))
    grouped: dict[tuple[str, str], History] = {}
    series: dict[SeriesKey, _Series] = {}
    for result in results:
        key = (device_of(result), model_of(result))
        history = grouped.setdefault(key, History(*key))
        previous = history.entries[-1].result if history.entries else None
        history.entries.append(_judge(previous, result, series, threshold, history.entries))
    return [grouped[key] for key in sorted(grouped)]


def _judge(
    previous: Result | None,
    result: Result,
    all_series: dict[SeriesKey, _Series],
    threshold: float,
    entries: list[HistoryEntry],
) -> HistoryEntry:
    """Judge `result` against its series; `entries` is the list its entry will be appended to
    (a flag that waits for confirmation is later replaced there)."""
    if result.fingerprint is None:
        return HistoryEntry(result, "not-comparable", "the run has no fingerprint", _id(previous))
    reasons = comparability([result], [], set())
    if reasons:  # suspect: never judged, never part of a window
        return HistoryEntry(result, "not-comparable", "; ".join(reasons), _id(previous))
    state = all_series.setdefault(series_key(result), _Series())
    before = state.runs[-1] if state.runs else None
    p50 = result.latency_ms.p50
    if p50 is None or p50 <= 0:
        return HistoryEntry(result, "insufficient-data", "the run has no p50", _id(before))
    entry = _against_window(result, p50, state, threshold, entries)
    state.runs.append(result)
    if before is None:
        if previous is None:
            return HistoryEntry(result, "first", "first run in this series", None)
        if previous.fingerprint is not None:
            changed = differences(_comparable(previous), _comparable(result))
            why = "; ".join(f"{k} differs: {a!r} vs {b!r}" for k, (a, b) in changed.items())
            if why:
                return HistoryEntry(result, "not-comparable", f"a new series: {why}", None)
        return HistoryEntry(result, "first", "first run in this series", None)
    return entry


def _id(result: Result | None) -> str | None:
    return result.run_id if result is not None else None


def _comparable(result: Result) -> dict[str, object]:
    return result.fingerprint.comparable() if result.fingerprint is not None else {}


def _against_window(
    result: Result, p50: float, state: _Series, threshold: float, entries: list[HistoryEntry]
) -> HistoryEntry:
    """Judge one run against its series' window and update the window state (the step logic and
    the confirmation of a flag by the next run)."""
    index = len(state.runs)
    before = _id(state.runs[-1]) if state.runs else None
    window = state.runs[max(state.start, index - HISTORY_WINDOW) : index]
    if len(window) >= HISTORY_MIN:
        centre, state.scale = robust_location_scale([float(r.latency_ms.p50 or 0) for r in window])
    elif window and state.scale is not None and state.start > 0:  # just after a step
        centre, _ = robust_location_scale([float(r.latency_ms.p50 or 0) for r in window])
    else:
        have = len(state.runs)
        return HistoryEntry(
            result, "insufficient-data",
            f"need {HISTORY_MIN} comparable runs of this series, have {have}", before, None, have,
        )  # fmt: skip
    scale = state.scale
    assert scale is not None
    z = (math.log(p50) - centre) / scale
    change = math.expm1(math.log(p50) - centre)
    side = 1 if z > Z_LIMIT else -1 if z < -Z_LIMIT else 0
    where = f"vs the median of {len(window)} runs before (robust z {z:+.1f})"
    # Hysteresis: a run continues a step when it sits beyond half the limit on the step's side,
    # so a step whose later runs straddle the limit is not flagged again.
    continues = state.streak and z * state.streak_side > Z_LIMIT / 2
    pending, state.pending = state.pending, None
    if pending is not None and not continues:
        pending.clear(result)
    if side == 0 and not continues:
        state.streak, state.streak_side = [], 0
        return HistoryEntry(result, "unchanged", f"{change:+.1%} {where}", before, change, len(window))
    if continues:
        if pending is not None:
            pending.confirm(result)
        first = state.runs[state.streak[0]]
        state.streak.append(index)
        if len(state.streak) >= CHANGE_POINT_RUNS:  # a step: the window restarts where it happened
            state.start, state.streak, state.streak_side = state.streak[0], [], 0
        return HistoryEntry(
            result, "unchanged",
            f"in the {state.streak_change:+.1%} step since run {(first.run_id or '?')[:12]} "
            f"({first.created_at[:16]}); {change:+.1%} {where}",
            before, change, len(window),
        )  # fmt: skip
    state.streak, state.streak_side, state.streak_change = [index], side, change
    boundary = threshold * BOUNDARY_FRACTION
    since = f"since run {(result.run_id or '?')[:12]} ({result.created_at[:16]})"
    if side > 0 and change >= boundary:
        verdict, what = "regression", f"latency_p50_ms: {change:+.1%} slower {where}, {since}"
    elif side < 0 and change <= -boundary:
        verdict, what = "improvement", f"latency_p50_ms: {-change:.1%} faster {where}, {since}"
    else:
        verdict, what = "unchanged", f"{change:+.1%} {where}: beyond the noise, below ±{boundary:.1%}"
        return HistoryEntry(result, verdict, what, before, change, len(window))
    state.pending = _Pending(entries, len(entries), verdict, what)
    unconfirmed = (
        f"{what}; not confirmed: one run cannot tell a step from a slow moment of the machine, "
        "the series' next run confirms or clears it"
    )
    return HistoryEntry(result, "insufficient-data", unconfirmed, before, change, len(window))


@dataclass(frozen=True)
class TradeOff:
    device: str
    base_model: str
    recipe: str
    size_bytes: int | None
    latency_p50_ms: float | None
    accuracy: float | None  # fraction, with labelled eval data
    accuracy_drop_points: float | None
    top1_agreement: float | None
    energy_mj: float | None
    run_id: str


def trade_offs(latest: Sequence[Result]) -> list[TradeOff]:
    """One point per recipe's latest run: what each recipe buys (size, latency, energy) and costs
    (accuracy), next to the plain model."""
    points = []
    for result in latest:
        quality = result.artifact.quality or Quality()
        points.append(
            TradeOff(
                device=device_of(result),
                base_model=base_model_of(result),
                recipe=recipe_of(result),
                size_bytes=result.artifact.size_bytes,
                latency_p50_ms=result.latency_ms.p50,
                accuracy=quality.accuracy,
                accuracy_drop_points=quality.accuracy_drop_points,
                top1_agreement=quality.top1_agreement,
                energy_mj=result.energy.mj_per_inference if result.energy is not None else None,
                run_id=result.run_id or "",
            )
        )
    return points


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    scope: str
    runs: list[Result]
    latest: list[Result]
    histories: list[History]
    trade_offs: list[TradeOff]

    @property
    def devices(self) -> list[str]:
        return sorted({device_of(r) for r in self.runs})

    @property
    def regressions(self) -> list[HistoryEntry]:
        return [e for h in self.histories for e in h.regressions]

    @property
    def budget_failures(self) -> list[Result]:
        return [r for r in self.latest if r.budget.verdict == "fail"]


def build_report(
    results: Iterable[Result],
    chosen: ReportFilter,
    now: datetime,
    thresholds: dict[str, float] | None = None,
) -> ReportData:
    everything = list(results)
    runs = select(everything, chosen)
    latest = latest_per_cell(runs)
    # History is judged on every run read (runs before --since are the window of the first ones in
    # scope); only the runs in scope are shown and can be flagged.
    judged = histories(select(everything, replace(chosen, since=None)), thresholds)
    in_scope = {id(r) for r in runs}
    shown = [History(h.device, h.model, [e for e in h.entries if id(e.result) in in_scope]) for h in judged]
    return ReportData(
        now, chosen.describe(), runs, latest, [h for h in shown if h.entries], trade_offs(latest)
    )
