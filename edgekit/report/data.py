"""What a report shows, derived from stored results: pure functions, no I/O.

- which runs: `--since`, `--device`, `--model` filters, oldest first;
- the latest run of each (device, model, recipe): the summary rows;
- history per (device, model): each run judged against the previous one by the regression gate
  (edgekit.judge.compare), so regressions are marked where they happened;
- trade-offs per device: size, latency and accuracy of each recipe's latest run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from edgekit.core.durations import parse_duration_s
from edgekit.core.errors import UsageError
from edgekit.core.result import Quality, Result
from edgekit.judge.compare import compare


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


@dataclass(frozen=True)
class HistoryEntry:
    result: Result
    verdict: str  # regression | improvement | unchanged | not-comparable | insufficient-data | first
    reason: str
    baseline_run_id: str | None


@dataclass
class History:
    device: str
    model: str
    entries: list[HistoryEntry] = field(default_factory=list)

    @property
    def regressions(self) -> list[HistoryEntry]:
        return [e for e in self.entries if e.verdict == "regression"]


def histories(results: Sequence[Result], thresholds: dict[str, float] | None = None) -> list[History]:
    """Per (device, model), oldest first: each run judged against the run before it by the same
    gate as `edgekit compare` (significance and effect size; differing fingerprints or throttled
    runs are "not-comparable", never silently compared)."""
    grouped: dict[tuple[str, str], History] = {}
    for result in results:
        key = (device_of(result), model_of(result))
        history = grouped.setdefault(key, History(*key))
        previous = history.entries[-1].result if history.entries else None
        history.entries.append(_judge(previous, result, thresholds))
    return [grouped[key] for key in sorted(grouped)]


def _judge(previous: Result | None, result: Result, thresholds: dict[str, float] | None) -> HistoryEntry:
    if previous is None:
        return HistoryEntry(result, "first", "first run in this series", None)
    if previous.fingerprint is None or result.fingerprint is None:
        return HistoryEntry(result, "not-comparable", "a run has no fingerprint", previous.run_id)
    comparison = compare([previous], [result], thresholds=thresholds)
    if not comparison.comparable:
        reason = "; ".join(comparison.not_comparable_reasons)
    else:
        changed = [m for m in comparison.metrics if m.verdict in ("regression", "improvement")]
        reason = "; ".join(f"{m.metric}: {m.reason}" for m in changed) or "no significant change"
        if all(m.verdict == "insufficient-data" for m in comparison.metrics):
            return HistoryEntry(result, "insufficient-data", reason, previous.run_id)
    return HistoryEntry(result, comparison.verdict, reason, previous.run_id)


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
    runs = select(results, chosen)
    latest = latest_per_cell(runs)
    return ReportData(now, chosen.describe(), runs, latest, histories(runs, thresholds), trade_offs(latest))
