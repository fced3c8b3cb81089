from __future__ import annotations

from typing import Any

from edgekit.core.profiles import Budget
from edgekit.core.result import Result
from edgekit.judge.budgets import evaluate, metric_values, unjudgeable_metrics
from edgekit.judge.thermal import thermal_summary
from tests.results import make_result

MIB = 1048576


def result(**overrides: Any) -> Result:
    changes: dict[str, Any] = {
        "latency_ms.p50": 4.0,
        "latency_ms.p90": 6.0,
        "latency_ms.p99": None,
        "latency_ms.null_reasons": {"p99": "p99 needs >= 662 samples, have 100"},
        "cold_start_ms": {"load": 30.0, "first_inference": 5.0},
        "memory.peak_rss_bytes": 100 * MIB,
        "artifact.size_bytes": 2 * MIB,
        "energy": None,
        "null_reasons": {"energy": "no power sensor on this board"},
    }
    changes.update(overrides)
    return make_result(changes)


def test_values_and_reasons() -> None:
    values = metric_values(result())
    assert values["cold_start_ms"].value == 35.0
    assert values["peak_rss_mb"].value == 100.0
    assert values["model_size_mb"].value == 2.0
    assert values["latency_p99_ms"].value is None
    assert "662" in (values["latency_p99_ms"].reason or "")
    assert values["energy_mj_per_inference"].reason == "no power sensor on this board"


def test_pass_fail_unknown() -> None:
    passing = evaluate(result(), Budget({"latency_p50_ms": 5, "peak_rss_mb": 100, "max_start_temp_c": 60}))
    assert passing.verdict == "pass"
    assert [c.metric for c in passing.checks] == [
        "latency_p50_ms",
        "peak_rss_mb",
    ]  # conditions aren't checks
    failing = evaluate(result(), Budget({"latency_p50_ms": 3.9, "latency_p99_ms": 1}))
    assert failing.verdict == "fail"
    assert [c.verdict for c in failing.checks] == ["fail", "unknown"]
    unknown = evaluate(result(), Budget({"latency_p50_ms": 5, "energy_mj_per_inference": 10}))
    assert unknown.verdict == "unknown"
    assert unknown.checks[1].reason == "no power sensor on this board"
    assert "reason" not in unknown.checks[0].to_dict()  # a measured check has no reason key
    assert evaluate(result(), Budget({})).verdict == "pass"


def test_thermal_summary_by_zone_type_and_throttle() -> None:
    start = {
        "thermal_zones": [
            {"zone": "thermal_zone0", "type": "cpu-thermal", "temp_c": 50.0},
            {"zone": "thermal_zone1", "type": "gpu-thermal", "temp_c": 55.0},
        ],
        "throttled": {"value": False, "source": "rpi"},
    }
    end = {
        "thermal_zones": [
            {"zone": "thermal_zone0", "type": "cpu-thermal", "temp_c": 61.5},
            {"zone": "thermal_zone1", "type": "gpu-thermal", "temp_c": 52.0},
        ],
        "throttled": {"value": True, "source": "rpi"},
    }
    by_type = thermal_summary(start, end, "cpu-thermal")
    assert (by_type["start_c"], by_type["end_c"], by_type["throttled"]) == (50.0, 61.5, True)
    hottest = thermal_summary(start, end, "")
    assert (hottest["start_c"], hottest["end_c"]) == (55.0, 61.5)
    none = thermal_summary(
        {"throttled": {"value": None, "reason": "no throttle source on this board"}}, {}, ""
    )
    assert none["start_c"] is None and none["throttled"] is None
    assert none["null_reasons"] == {
        "start_c": "no thermal zones",
        "throttled": "no throttle source on this board",
    }


def test_a_budget_the_device_cannot_measure_is_marked_with_the_reason() -> None:
    budget = Budget({"latency_p50_ms": 5, "latency_p99_ms": 1, "energy_mj_per_inference": 10})
    cannot = unjudgeable_metrics(
        budget,
        device="local",
        emulated=False,
        power_problem="rapl:package-0: no powercap zone named package-0",
    )
    why = "no power sensor on local: rapl:package-0: no powercap zone named package-0"
    assert cannot == {"energy_mj_per_inference": why}
    verdict = evaluate(result(), budget, "local", cannot)
    checks = {c.metric: c for c in verdict.checks}
    energy = checks["energy_mj_per_inference"]
    assert (energy.verdict, energy.unjudgeable, energy.reason) == ("unknown", True, cannot[energy.metric])
    p99 = checks["latency_p99_ms"]  # unknown this run (too few samples), not for want of a sensor
    assert p99.verdict == "unknown" and p99.unjudgeable is None
    assert unjudgeable_metrics(budget, device="local", emulated=False, power_problem=None) == {}
    assert (
        unjudgeable_metrics(Budget({"peak_rss_mb": 1}), device="x", emulated=False, power_problem="none")
        == {}
    )
    emulated = unjudgeable_metrics(budget, device="lab-pi", emulated=True, power_problem=None)
    assert set(emulated) == {"latency_p50_ms", "latency_p99_ms", "energy_mj_per_inference"}
