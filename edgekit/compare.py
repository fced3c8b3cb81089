"""Compare results: which runs to compare (references), whether they may be compared, and how.

A reference names one or more results:
    results.json               a result file (`edgekit bench --json > results.json`), or a JSON list
    RUN_ID                     a stored run (a unique prefix of at least 6 characters is enough)
    latest:DEVICE:MODEL[:N]    the newest stored run (or N newest, pooled) of MODEL on DEVICE
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UsageError
from edgekit.fingerprint import differences
from edgekit.regression import DEFAULT_THRESHOLD, MetricVerdict, judge_samples, judge_scalar
from edgekit.store import ResultsStore

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


def load_reference(reference: str, store: ResultsStore | None) -> list[dict[str, Any]]:
    """The results a reference names (see the module doc); UsageError when it names none."""
    if reference.endswith(".json") or Path(reference).is_file():
        return _results_file(Path(reference))
    if store is None:
        raise UsageError(f"{reference!r}: not a result file, and no results store to look it up in")
    if reference.startswith("latest:"):
        parts = reference.split(":")
        if len(parts) not in (3, 4) or not all(parts[1:3]) or (len(parts) == 4 and not parts[3].isdigit()):
            raise UsageError(f"{reference!r}: expected latest:DEVICE:MODEL or latest:DEVICE:MODEL:N")
        count = int(parts[3]) if len(parts) == 4 else 1
        runs = store.runs(device=parts[1], model=parts[2], limit=count)
        if not runs:
            raise UsageError(f"{reference!r}: no stored run of model {parts[2]!r} on device {parts[1]!r}")
        return [run.result for run in runs]
    run = store.get(reference) or (store.get_by_prefix(reference) if len(reference) >= 6 else None)
    if run is None:
        raise UsageError(f"{reference!r}: no such result file or stored run id (see `edgekit history`)")
    return [run.result]


def _results_file(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON (truncated or not a result?): {exc}") from None
    results = data if isinstance(data, list) else [data]
    for result in results:
        if not isinstance(result, dict) or "latency_ms" not in result or "fingerprint" not in result:
            raise UsageError(f"{path}: not an edgekit result (no latency_ms/fingerprint)")
    return results


def comparability(
    baseline: list[dict[str, Any]], candidate: list[dict[str, Any]], ignore: set[str]
) -> list[str]:
    """Why these runs must not be compared: differing conditions, or a suspect run (throttled
    during its window, or started hotter than max_start_temp_c; see edgekit.thermal)."""
    reference = baseline[0]["fingerprint"]
    reasons = []
    for result in [*baseline[1:], *candidate]:
        for key, (want, got) in differences(reference, result["fingerprint"]).items():
            if key not in ignore:
                reasons.append(f"{key} differs: {want!r} vs {got!r} (run {result.get('run_id', '?')})")
    for result in [*baseline, *candidate]:
        thermal = result.get("thermal") or {}
        if thermal.get("suspect"):
            why = "; ".join(thermal.get("suspect_reasons") or []) or "see its thermal section"
            reasons.append(f"run {result.get('run_id', '?')} is suspect: {why}")
        elif result["fingerprint"].get("throttled"):
            reasons.append(f"run {result.get('run_id', '?')} throttled during its window (suspect)")
    return sorted(set(reasons))


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def compare(
    baseline: list[dict[str, Any]],
    candidate: list[dict[str, Any]],
    thresholds: dict[str, float] | None = None,
    ignore: set[str] | None = None,
    seed: int = 0,
) -> Comparison:
    chosen = thresholds or {}
    comparison = Comparison(
        [r.get("run_id", "?") for r in baseline],
        [r.get("run_id", "?") for r in candidate],
        comparable=True,
    )
    reasons = comparability(baseline, candidate, ignore or set())
    if reasons:
        comparison.comparable = False
        comparison.not_comparable_reasons = reasons
        return comparison

    def threshold(metric: str) -> float:
        return chosen.get(metric, chosen.get("*", DEFAULT_THRESHOLD))

    base_blocks = [b for r in baseline for b in (r["latency_ms"].get("block_medians") or [])]
    cand_blocks = [b for r in candidate for b in (r["latency_ms"].get("block_medians") or [])]
    comparison.metrics.append(
        judge_samples("latency_p50_ms", base_blocks, cand_blocks, threshold("latency_p50_ms"), seed=seed)
    )
    for metric, read in (
        ("peak_rss_bytes", lambda r: (r.get("memory") or {}).get("peak_rss_bytes")),
        ("artifact_size_bytes", lambda r: (r.get("artifact") or {}).get("size_bytes")),
    ):
        comparison.metrics.append(
            judge_scalar(
                metric,
                _median([read(r) for r in baseline]),
                _median([read(r) for r in candidate]),
                threshold(metric),
            )
        )
    return comparison


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
