"""OpenMetrics text for Prometheus' node_exporter textfile collector: the latest run of each
(device, model, recipe) as gauges in base units (seconds, bytes, joules), labelled by device,
model and recipe. Gauges only, so the same text also parses as the classic Prometheus format."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from edgekit.core.result import ColdStart, Energy, Memory, Result
from edgekit.report.data import ReportData, base_model_of, created_at, device_of, model_of, recipe_of

Reader = Callable[[Result], float | None]


def _scaled(read: Callable[[Result], float | None], scale: float = 1.0) -> Reader:
    """A reader of one typed field, in base units (value * scale); None when not measured."""

    def value(result: Result) -> float | None:
        measured = read(result)
        return float(measured) * scale if measured is not None else None

    return value


def _budget_failed(result: Result) -> float | None:
    return {"pass": 0.0, "fail": 1.0}.get(result.budget.verdict)


def _suspect(result: Result) -> float | None:
    return 1.0 if result.suspect else 0.0


def _cold(result: Result) -> ColdStart:
    return result.cold_start_ms or ColdStart()


def _memory(result: Result) -> Memory:
    return result.memory or Memory()


def _energy(result: Result) -> Energy | None:
    return result.energy


def _accuracy(result: Result) -> float | None:
    return result.artifact.quality.accuracy if result.artifact.quality is not None else None


# name, unit, help, extra labels, reader
METRICS: tuple[tuple[str, str, str, dict[str, str], Reader], ...] = (
    ("edgekit_latency_seconds", "seconds", "Latency per inference at a quantile.", {"quantile": "0.5"},
     _scaled(lambda r: r.latency_ms.p50, 1e-3)),
    ("edgekit_latency_seconds", "seconds", "", {"quantile": "0.9"},
     _scaled(lambda r: r.latency_ms.p90, 1e-3)),
    ("edgekit_latency_seconds", "seconds", "", {"quantile": "0.99"},
     _scaled(lambda r: r.latency_ms.p99, 1e-3)),
    ("edgekit_cold_start_seconds", "seconds", "Model load and first inference.", {"phase": "load"},
     _scaled(lambda r: _cold(r).load, 1e-3)),
    ("edgekit_cold_start_seconds", "seconds", "", {"phase": "first_inference"},
     _scaled(lambda r: _cold(r).first_inference, 1e-3)),
    ("edgekit_peak_rss_bytes", "bytes", "Peak resident memory of the benchmark process.", {},
     _scaled(lambda r: _memory(r).peak_rss_bytes)),
    ("edgekit_model_rss_delta_bytes", "bytes", "Resident memory the model added.", {},
     _scaled(lambda r: _memory(r).model_rss_delta_bytes)),
    ("edgekit_artifact_size_bytes", "bytes", "Size of the model artifact.", {},
     _scaled(lambda r: r.artifact.size_bytes)),
    ("edgekit_energy_per_inference_joules", "joules", "Energy per inference above idle.", {},
     _scaled(lambda r: e.mj_per_inference if (e := _energy(r)) else None, 1e-3)),
    ("edgekit_power_watts", "watts", "Average power during the timed window.", {},
     _scaled(lambda r: e.avg_power_w if (e := _energy(r)) else None)),
    ("edgekit_accuracy_ratio", "ratio", "Accuracy of the artifact on its eval data.", {},
     _scaled(_accuracy)),
    ("edgekit_budget_failed", "", "1 when a budget failed, 0 when all passed (absent when unknown).", {},
     _budget_failed),
    ("edgekit_run_suspect", "", "1 when the run throttled or started too hot.", {}, _suspect),
    ("edgekit_run_timestamp_seconds", "seconds", "When the run was made (unix time).", {},
     lambda r: created_at(r).timestamp()),
)  # fmt: skip


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(result: Result, extra: dict[str, str]) -> str:
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
