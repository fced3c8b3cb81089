"""OpenMetrics text for Prometheus' node_exporter textfile collector: the latest run of each
(device, model, recipe) as gauges in base units (seconds, bytes, joules), labelled by device,
model and recipe. Gauges only, so the same text also parses as the classic Prometheus format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgekit.report.data import ReportData, base_model_of, created_at, device_of, model_of, recipe_of

Reader = Callable[[dict[str, Any]], float | None]


def _get(*path: str, scale: float = 1.0) -> Reader:
    def read(result: dict[str, Any]) -> float | None:
        value: Any = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return (
            float(value) * scale if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    return read


def _budget_failed(result: dict[str, Any]) -> float | None:
    verdict = (result.get("budget") or {}).get("verdict")
    return {"pass": 0.0, "fail": 1.0}.get(str(verdict))


def _suspect(result: dict[str, Any]) -> float | None:
    thermal = result.get("thermal") or {}
    return 1.0 if thermal.get("suspect") or thermal.get("throttled") else 0.0


# name, unit, help, extra labels, reader
METRICS: tuple[tuple[str, str, str, dict[str, str], Reader], ...] = (
    ("edgekit_latency_seconds", "seconds", "Latency per inference at a quantile.", {"quantile": "0.5"},
     _get("latency_ms", "p50", scale=1e-3)),
    ("edgekit_latency_seconds", "seconds", "", {"quantile": "0.9"}, _get("latency_ms", "p90", scale=1e-3)),
    ("edgekit_latency_seconds", "seconds", "", {"quantile": "0.99"}, _get("latency_ms", "p99", scale=1e-3)),
    ("edgekit_cold_start_seconds", "seconds", "Model load and first inference.", {"phase": "load"},
     _get("cold_start_ms", "load", scale=1e-3)),
    ("edgekit_cold_start_seconds", "seconds", "", {"phase": "first_inference"},
     _get("cold_start_ms", "first_inference", scale=1e-3)),
    ("edgekit_peak_rss_bytes", "bytes", "Peak resident memory of the benchmark process.", {},
     _get("memory", "peak_rss_bytes")),
    ("edgekit_model_rss_delta_bytes", "bytes", "Resident memory the model added.", {},
     _get("memory", "model_rss_delta_bytes")),
    ("edgekit_artifact_size_bytes", "bytes", "Size of the model artifact.", {},
     _get("artifact", "size_bytes")),
    ("edgekit_energy_per_inference_joules", "joules", "Energy per inference above idle.", {},
     _get("energy", "mj_per_inference", scale=1e-3)),
    ("edgekit_power_watts", "watts", "Average power during the timed window.", {},
     _get("energy", "avg_power_w")),
    ("edgekit_accuracy_ratio", "ratio", "Accuracy of the artifact on its eval data.", {},
     _get("artifact", "quality", "accuracy")),
    ("edgekit_budget_failed", "", "1 when a budget failed, 0 when all passed (absent when unknown).", {},
     _budget_failed),
    ("edgekit_run_suspect", "", "1 when the run throttled or started too hot.", {}, _suspect),
    ("edgekit_run_timestamp_seconds", "seconds", "When the run was made (unix time).", {},
     lambda r: created_at(r).timestamp()),
)  # fmt: skip


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(result: dict[str, Any], extra: dict[str, str]) -> str:
    labels = {
        "device": device_of(result),
        "model": base_model_of(result),
        "artifact": model_of(result),
        "recipe": recipe_of(result),
        **extra,
    }
    return ",".join(f'{key}="{_label_value(value)}"' for key, value in labels.items())


def _families(report: ReportData) -> Iterator[tuple[str, str, str, list[str]]]:
    order: list[str] = []
    families: dict[str, tuple[str, str, list[str]]] = {}
    for name, unit, help_text, extra, read in METRICS:
        if name not in families:
            order.append(name)
            families[name] = (unit, help_text, [])
        samples = families[name][2]
        for result in report.latest:
            value = read(result)
            if value is not None:
                samples.append(f"{name}{{{_labels(result, extra)}}} {value:.10g}")
    for name in order:
        unit, help_text, samples = families[name]
        yield name, unit, help_text, samples


def render_openmetrics(report: ReportData) -> str:
    lines = []
    for name, unit, help_text, samples in _families(report):
        lines.append(f"# TYPE {name} gauge")
        if unit:
            lines.append(f"# UNIT {name} {unit}")
        lines.append(f"# HELP {name} {help_text}")
        lines.extend(samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
