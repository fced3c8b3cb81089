"""Console output shared by commands: JSON, verdict tables, progress, one-line errors."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from edgekit.judge.budgets import FAIL, PASS, metric_values

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
if not stdout.is_terminal and "COLUMNS" not in os.environ:
    # Piped output (logs, CI) has no width; 80 columns would fold every table.
    stdout = Console(highlight=False, width=160)

_VERDICT_STYLE = {PASS: "bold green", FAIL: "bold red", "unknown": "yellow"}


def print_json(value: Any) -> None:
    """Machine output: exactly one JSON document on stdout, nothing else there."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.{digits}g}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.{digits}f}"


def verdict_text(verdict: str) -> str:
    style = _VERDICT_STYLE.get(verdict, "")
    return f"[{style}]{verdict.upper()}[/]"


def result_table(result: dict[str, Any]) -> Table:
    """Every metric with its budget and verdict; unmeasured metrics show why."""
    checks = {c["metric"]: c for c in result["budget"]["checks"]}
    table = Table(title=_title(result), title_justify="left", show_lines=False)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_column("budget", justify="right")
    table.add_column("verdict")
    table.add_column("note", overflow="fold")
    thermal = result.get("thermal") or {}
    if thermal.get("suspect"):
        table.caption = "[bold red]SUSPECT RUN[/]: " + "; ".join(thermal.get("suspect_reasons") or [])
        table.caption_justify = "left"
    for metric, measured in metric_values(result).items():
        check = checks.get(metric)
        note = measured.reason or (check or {}).get("reason") or ""
        table.add_row(
            metric,
            fmt(measured.value),
            fmt(check["limit"]) if check else "",
            verdict_text(check["verdict"]) if check else "[dim]no budget[/]",
            note,
        )
    return table


def _title(result: dict[str, Any]) -> str:
    device, runtime, latency = result["device"], result.get("runtime") or {}, result["latency_ms"]
    return (
        f"{result['model']['name']} on {device['name']} (profile {device['profile']}) — "
        f"{runtime.get('name')} {runtime.get('version')}, threads={runtime.get('threads')}, "
        f"n={latency['n']}"
        + (" — EMULATED (qemu): timings are not the board's" if device.get("emulated") else "")
    )


def print_result(result: dict[str, Any]) -> None:
    stdout.print(result_table(result))
    latency, memory, thermal = result["latency_ms"], result["memory"], result["thermal"]
    cold = result.get("cold_start_ms") or {}
    details = [
        f"latency ms: mean {fmt(latency.get('mean'))} ± {fmt(latency.get('std'))}, "
        f"min {fmt(latency.get('min'))}, max {fmt(latency.get('max'))}, MAD {fmt(latency.get('mad'))}",
        f"cold start ms: load {fmt(cold.get('load'))}, first inference {fmt(cold.get('first_inference'))}",
        f"memory: model delta {_mib(memory.get('model_rss_delta_bytes'))} ({memory.get('source')})",
        _thermal_line(thermal),
        _energy_line(result),
    ]
    outliers = latency.get("outliers") or {}
    if outliers.get("low") or outliers.get("high"):
        details.append(
            f"outliers ({outliers.get('rule')}): {outliers.get('low')} low, {outliers.get('high')} high "
            "(kept in every statistic)"
        )
    for line in details:
        stdout.print(f"  {line}")
    run_id = result.get("run_id")
    suspect = "  [bold red]SUSPECT[/] (throttled or started hot: see above)" if thermal.get("suspect") else ""
    stdout.print(
        f"verdict: {verdict_text(result['budget']['verdict'])}"
        + (f"  (run {run_id})" if run_id else "")
        + suspect
    )


def _thermal_line(thermal: dict[str, Any]) -> str:
    reasons = thermal.get("null_reasons") or {}
    if thermal.get("start_c") is None:
        temps = reasons.get("start_c", "not measured")
    else:
        temps = f"start {fmt(thermal['start_c'], 1)} °C, end {fmt(thermal.get('end_c'), 1)} °C"
    throttled = thermal.get("throttled")
    throttle = reasons.get("throttled", "unknown") if throttled is None else ("yes" if throttled else "no")
    return f"thermal: {temps}; throttled: {throttle}"


def _energy_line(result: dict[str, Any]) -> str:
    energy = result.get("energy")
    if not energy:
        return f"energy: not measured ({(result.get('null_reasons') or {}).get('energy', 'no sensor')})"
    return (
        f"energy: {fmt(energy['mj_per_inference'])} ± {fmt(energy.get('mj_per_inference_uncertainty'))} "
        f"mJ/inference above idle; {fmt(energy.get('avg_power_w'))} W busy, "
        f"{fmt(energy.get('idle_power_w'))} W idle ({energy.get('sensor')}, "
        f"{energy.get('sample_count')}+{energy.get('idle_sample_count')} samples)"
    )


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 1048576:.1f} MiB"


class ProgressPrinter:
    """Turns agent progress events into a live line on a terminal, or sparse log lines otherwise."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._live = stderr.is_terminal
        self._last_phase: str | None = None
        self._last_print = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        phase = str(event.get("phase", ""))
        text = self.describe(event)
        now = time.monotonic()
        if self._live:
            stderr.print(f"\r[dim]{text}[/]".ljust(70), end="")
            if phase == "done":
                stderr.print("\r" + " " * 72 + "\r", end="")
        elif phase != self._last_phase or now - self._last_print > 10:
            stderr.print(text)
            self._last_print = now
        self._last_phase = phase

    @staticmethod
    def describe(event: dict[str, Any]) -> str:
        phase = event.get("phase")
        device = event.get("device", "")
        if phase == "connect":
            return f"{device}: starting agent"
        if phase == "done":
            return f"{device}: done"
        if event.get("message"):
            return f"{phase}: {event['message']}"
        done, total, elapsed = event.get("done"), event.get("total"), event.get("elapsed_s")
        parts = [str(phase)]
        if done is not None:
            parts.append(f"{done}/{total}" if total else str(done))
        if elapsed is not None:
            parts.append(f"{elapsed:.1f}s")
        return " ".join(parts)
