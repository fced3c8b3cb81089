"""What a report says about stored runs: filters, latest rows, regressions marked where they
happened, trade-off points, and the Markdown and OpenMetrics renderings of it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from edgekit.core.errors import UsageError
from edgekit.core.result import Result
from edgekit.report import ReportFilter, build_report, parse_since, render_markdown, render_openmetrics
from edgekit.report.data import base_model_of, recipe_of
from tests.results import make_result

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
FINGERPRINT = {"device": "pi", "machine": "aarch64", "threads": 4, "governor": "performance", "hash": "f"}


def result(
    run_id: str,
    hours_ago: float,
    p50: float,
    device: str = "pi",
    model: str = "net",
    recipe: str | None = None,
    seed: int = 0,
    **fingerprint: Any,
) -> Result:
    """A stored result with 10 block medians scattered 1% around p50 (ground truth: the p50)."""
    blocks = (p50 * (1 + 0.01 * np.random.default_rng(seed).standard_normal(10))).tolist()
    return make_result(
        {
            "run_id": run_id,
            "created_at": (NOW - timedelta(hours=hours_ago)).isoformat(),
            "device.name": device,
            "model.name": model,
            "artifact": {
                "sha256": "a" * 64,
                "size_bytes": 1_000_000,
                "recipe": [{"name": recipe}] if recipe else [],
                "source_name": "net" if recipe else None,
                "quality": {"accuracy": 0.95, "accuracy_drop_points": 1.0} if recipe else None,
            },
            "latency_ms.p50": p50,
            "latency_ms.p90": p50 * 1.2,
            "latency_ms.p99": p50 * 1.5,
            "latency_ms.min": p50 * 0.9,
            "latency_ms.max": p50 * 3,
            "latency_ms.block_medians": blocks,
            "cold_start_ms": {"load": 10.0, "first_inference": 2.0},
            "memory": {"peak_rss_bytes": 50 * 2**20},
            "energy": None,
            "budget.verdict": "pass",
            "thermal": {},
            "fingerprint": {**FINGERPRINT, "device": device, **fingerprint},
        }
    )


def test_since_accepts_durations_and_dates() -> None:
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    for bad in ("yesterday", "7x", ""):
        with pytest.raises(UsageError, match="--since"):
            parse_since(bad, NOW)


def test_filters_and_latest_rows() -> None:
    runs = [
        result("old", 48, 1.0),
        result("a1", 5, 1.0),
        result("a2", 4, 1.0, seed=1),
        result("other-device", 3, 2.0, device="jetson"),
        result("int8", 2, 0.5, model="net-int8", recipe="int8-static"),
    ]
    report = build_report(runs, ReportFilter(since=NOW - timedelta(days=1), devices=("pi",)), NOW)
    assert [r.run_id for r in report.runs] == ["a1", "a2", "int8"]
    assert [r.run_id for r in report.latest] == ["a2", "int8"]
    assert report.devices == ["pi"]
    assert "since 2026-11-23T12:00" in report.scope and "devices pi" in report.scope
    by_model = build_report(runs, ReportFilter(models=("net",)), NOW)  # the base model covers its artifacts
    assert {r.run_id for r in by_model.runs} == {"old", "a1", "a2", "other-device", "int8"}
    assert (
        base_model_of(runs[-1]) == "net"
        and recipe_of(runs[-1]) == "int8-static"
        and recipe_of(runs[0]) == "as-is"
    )
    assert [(t.recipe, t.accuracy) for t in report.trade_offs] == [("as-is", None), ("int8-static", 0.95)]


def test_history_marks_the_regression_where_it_happened() -> None:
    runs = [
        result("r1", 5, 1.0, seed=1),
        result("r2", 4, 1.0, seed=2),
        result("slow", 3, 1.2, seed=3),  # ground truth: +20%
        result("r4", 2, 1.2, seed=4),
        result("threads", 1, 0.6, seed=5, threads=1),  # different conditions: never compared
    ]
    report = build_report(runs, ReportFilter(), NOW)
    (history,) = report.histories
    verdicts = [(e.result.run_id, e.verdict) for e in history.entries]
    assert verdicts == [
        ("r1", "first"),
        ("r2", "unchanged"),
        ("slow", "regression"),
        ("r4", "unchanged"),
        ("threads", "not-comparable"),
    ]
    (regression,) = report.regressions
    assert regression.baseline_run_id == "r2" and "latency_p50_ms" in regression.reason
    assert "threads differs" in history.entries[-1].reason


def test_markdown_leads_with_regressions_and_escapes_pipes() -> None:
    runs = [result("r1", 3, 1.0), result("slow", 2, 1.3, seed=1, model="net")]
    runs[1].budget.verdict = "fail"
    runs[1].device.name = runs[0].device.name = "pi|lab"
    text = render_markdown(build_report(runs, ReportFilter(), NOW))
    lines = text.splitlines()
    assert "**1** regressions, **1** over budget" in text
    assert lines.index("### :red_circle: Regressions") < lines.index("### Latest runs")
    assert "pi\\|lab" in text and "**fail**" in text
    empty = render_markdown(build_report([], ReportFilter(), NOW))
    assert "No stored runs match." in empty


def test_openmetrics_parses_with_prometheus_client_in_base_units() -> None:
    odd = result("q", 1, 2.0, device='lab "3"\\n', model="m")
    runs = [result("r1", 2, 4.0), odd, result("int8", 1, 1.0, model="net-int8", recipe="int8-static")]
    runs[0].budget.verdict = "fail"
    text = render_openmetrics(build_report(runs, ReportFilter(), NOW))
    families = {f.name: f for f in text_string_to_metric_families(text)}  # raises on invalid text
    assert text.endswith("# EOF\n")
    latency = {
        (s.labels["device"], s.labels["artifact"], s.labels["quantile"]): s.value
        for s in families["edgekit_latency_seconds"].samples
    }
    assert latency[("pi", "net", "0.5")] == pytest.approx(0.004)
    assert latency[("pi", "net-int8", "0.9")] == pytest.approx(0.0012)
    assert latency[('lab "3"\\n', "m", "0.99")] == pytest.approx(0.003)
    assert families["edgekit_latency_seconds"].unit == "seconds"
    failed = {s.labels["artifact"]: s.value for s in families["edgekit_budget_failed"].samples}
    assert failed == {"net": 1.0, "m": 0.0, "net-int8": 0.0}
    accuracy = families["edgekit_accuracy_ratio"].samples
    assert [(s.labels["recipe"], s.value) for s in accuracy] == [("int8-static", 0.95)]
    assert "edgekit_energy_per_inference_joules" not in {  # no sensor: no sample, never a made-up 0
        s.name for f in families.values() for s in f.samples
    }


def test_a_result_without_fingerprint_is_not_compared() -> None:
    first, second = result("a", 2, 1.0), result("b", 1, 2.0)
    second = second.model_copy(update={"fingerprint": None})
    (history,) = build_report([first, second], ReportFilter(), NOW).histories
    assert history.entries[1].verdict == "not-comparable"
