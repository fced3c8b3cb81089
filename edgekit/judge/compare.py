"""Compare results: whether runs may be compared, and how (pure: results in, verdicts out).

Which runs a reference names (a file, a run id, `latest:...`) is edgekit.store.references' job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.core.errors import UsageError
from edgekit.core.result import Result
from edgekit.judge.fingerprint import COMPARABLE_KEYS, differences
from edgekit.judge.paired import DEFAULT_LOOKS, SequentialVerdict, judge_paired
from edgekit.judge.regression import (
    DEFAULT_THRESHOLD,
    MetricVerdict,
    RunNoise,
    judge_runs,
    judge_scalar,
    run_noise,
)

METRICS = ("latency_p50_ms", "peak_rss_bytes", "artifact_size_bytes")


@dataclass
class Comparison:
    baseline_runs: list[str]
    candidate_runs: list[str]
    comparable: bool
    not_comparable_reasons: list[str] = field(default_factory=list)
    metrics: list[MetricVerdict] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if not self.comparable:
            return "not-comparable"
        verdicts = {m.verdict for m in self.metrics}
        for verdict in ("regression", "improvement"):
            if verdict in verdicts:
                return verdict
        latency = next((m for m in self.metrics if m.metric == "latency_p50_ms"), None)
        if latency is not None and latency.verdict == "insufficient-data":
            return "insufficient-data"  # the runs cannot show whether latency changed
        return "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "baseline_runs": self.baseline_runs,
            "candidate_runs": self.candidate_runs,
            "comparable": self.comparable,
            "not_comparable_reasons": self.not_comparable_reasons,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def _run(result: Result) -> str:
    return result.run_id or "?"


def _fingerprint(result: Result) -> dict[str, Any]:
    return result.fingerprint.comparable() if result.fingerprint is not None else {}


def comparability(baseline: list[Result], candidate: list[Result], ignore: set[str]) -> list[str]:
    """Why these runs must not be compared: differing conditions, or a suspect run (throttled
    during its window, or started hotter than max_start_temp_c; see edgekit.judge.thermal)."""
    reference = _fingerprint(baseline[0])
    reasons = []
    for result in [*baseline[1:], *candidate]:
        for key, (want, got) in differences(reference, _fingerprint(result)).items():
            if key not in ignore:
                reasons.append(f"{key} differs: {want!r} vs {got!r} (run {_run(result)})")
    for result in [*baseline, *candidate]:
        if result.thermal is not None and result.thermal.suspect:
            why = "; ".join(result.thermal.suspect_reasons) or "see its thermal section"
            reasons.append(f"run {_run(result)} is suspect: {why}")
        elif result.fingerprint is not None and result.fingerprint.throttled:
            reasons.append(f"run {_run(result)} throttled during its window (suspect)")
    return sorted(set(reasons))


SeriesKey = tuple[str, str, str, tuple[tuple[str, str], ...]]


def series_key(result: Result) -> SeriesKey:
    """What makes runs one series: the device, the model, the artifact (sha256) and the full
    comparable fingerprint (edgekit.judge.fingerprint.COMPARABLE_KEYS, runtime providers included).
    A run without a fingerprint is a series of its own kind (its fingerprint part is empty)."""
    fingerprint = _fingerprint(result)
    conditions = tuple((key, repr(fingerprint.get(key))) for key in COMPARABLE_KEYS) if fingerprint else ()
    return (result.device.name, result.model.name, result.artifact.sha256 or "", conditions)


def series_noise(history: list[Result], exclude: set[str] | None = None) -> RunNoise:
    """The run-to-run noise of a series from its stored runs (any order; those of one series as
    `series_key` says, and not suspect), leaving out the runs in `exclude` (the runs being judged)."""
    kept = sorted(
        (r for r in history if (r.run_id or "") not in (exclude or set()) and r.latency_ms.p50),
        key=lambda r: r.created,
    )
    kept = [r for r in kept if not (r.thermal is not None and r.thermal.suspect)]
    return run_noise([float(r.latency_ms.p50 or 0) for r in kept])


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def _peak_rss(result: Result) -> int | None:
    return result.memory.peak_rss_bytes if result.memory is not None else None


def compare(
    baseline: list[Result],
    candidate: list[Result],
    thresholds: dict[str, float] | None = None,
    ignore: set[str] | None = None,
    seed: int = 0,
    noise: RunNoise | None = None,
) -> Comparison:
    """Judge candidate runs against baseline runs: latency with each run's p50 (ms) as one
    observation (`judge_runs`: Hodges-Lehmann change, inverted Mann-Whitney interval, or the
    series' run-to-run `noise` when there are too few runs for that), peak RSS and artifact size
    (bytes) on their medians by the threshold alone (edgekit.judge.regression). `seed` is unused
    (kept for callers)."""
    chosen = thresholds or {}
    comparison = Comparison([_run(r) for r in baseline], [_run(r) for r in candidate], comparable=True)
    reasons = comparability(baseline, candidate, ignore or set())
    if reasons:
        comparison.comparable = False
        comparison.not_comparable_reasons = reasons
        return comparison

    def threshold(metric: str) -> float:
        return chosen.get(metric, chosen.get("*", DEFAULT_THRESHOLD))

    base_p50 = [r.latency_ms.p50 for r in baseline if r.latency_ms.p50 is not None]
    cand_p50 = [r.latency_ms.p50 for r in candidate if r.latency_ms.p50 is not None]
    comparison.metrics.append(
        judge_runs("latency_p50_ms", base_p50, cand_p50, threshold("latency_p50_ms"), noise)
    )
    scalars: tuple[tuple[str, Callable[[Result], float | None]], ...] = (
        ("peak_rss_bytes", _peak_rss),
        ("artifact_size_bytes", lambda r: r.artifact.size_bytes),
    )
    for metric, read in scalars:
        comparison.metrics.append(
            judge_scalar(
                metric,
                _median([read(r) for r in baseline]),
                _median([read(r) for r in candidate]),
                threshold(metric),
            )
        )
    return comparison


def compare_paired(
    baseline: Result,
    candidate: Result,
    log_ratios: list[float],
    planned: int,
    thresholds: dict[str, float] | None = None,
    ignore: set[str] | None = None,
    looks: int = DEFAULT_LOOKS,
) -> tuple[Comparison, SequentialVerdict | None]:
    """Judge an interleaved A/B run: latency on the per-round-pair log-ratios
    log(candidate round median / baseline round median), in round order, `planned` round pairs
    looked at `looks` times (edgekit.judge.paired); peak RSS and artifact size (bytes) as scalars.
    The artifacts differ by design, so `artifact_sha256` is never a reason not to compare. The
    sequential verdict is None when the runs are not comparable."""
    chosen = thresholds or {}
    comparison = Comparison([_run(baseline)], [_run(candidate)], comparable=True)
    reasons = comparability([baseline], [candidate], {"artifact_sha256", *(ignore or set())})
    if reasons:
        comparison.comparable = False
        comparison.not_comparable_reasons = reasons
        return comparison, None

    def threshold(metric: str) -> float:
        return chosen.get(metric, chosen.get("*", DEFAULT_THRESHOLD))

    sequential = judge_paired(
        "latency_p50_ms", log_ratios, baseline.latency_ms.p50, candidate.latency_ms.p50,
        threshold("latency_p50_ms"), looks=looks, planned=planned,
    )  # fmt: skip
    comparison.metrics.append(sequential.verdict)
    comparison.metrics.append(
        judge_scalar("peak_rss_bytes", _peak_rss(baseline), _peak_rss(candidate), threshold("peak_rss_bytes"))
    )
    comparison.metrics.append(
        judge_scalar(
            "artifact_size_bytes",
            baseline.artifact.size_bytes,
            candidate.artifact.size_bytes,
            threshold("artifact_size_bytes"),
        )
    )
    return comparison, sequential


def parse_thresholds(options: list[str]) -> dict[str, float]:
    """`--threshold 5` (every metric) or `--threshold latency_p50_ms=3` (percent)."""
    thresholds: dict[str, float] = {}
    for option in options:
        metric, _, value = option.rpartition("=")
        metric = metric or "*"
        if metric != "*" and metric not in METRICS:
            raise UsageError(f"--threshold {option}: unknown metric {metric!r} (one of {', '.join(METRICS)})")
        try:
            percent = float(value.rstrip("%"))
        except ValueError:
            raise UsageError(f"--threshold {option}: {value!r} is not a percentage") from None
        if not 0 < percent < 1000:
            raise UsageError(f"--threshold {option}: must be a percentage > 0")
        thresholds[metric] = percent / 100
    return thresholds
