"""Console output shared by commands: JSON, verdict tables, progress, one-line errors."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.control import Control, ControlType
from rich.table import Table
from rich.text import Text

from edgekit.core.result import ColdStart, Memory, Result, Runtime, Thermal
from edgekit.judge.budgets import FAIL, PASS, metric_values

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
if not stdout.is_terminal and "COLUMNS" not in os.environ:
    # Piped output (logs, CI) has no width; 80 columns would fold every table.
    stdout = Console(highlight=False, width=160)

_REWRITE_LINE = Control(ControlType.CARRIAGE_RETURN, (ControlType.ERASE_IN_LINE, 2))
_VERDICT_STYLE = {PASS: "bold green", FAIL: "bold red", "unknown": "yellow"}


def _jsonable(value: Any) -> Any:
    """json.dumps' fallback: a typed model (a Result) as its JSON object, anything else as text."""
    if isinstance(value, BaseModel):  # the keys that were set, by alias: as Result.to_dict()
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return str(value)


def print_json(value: Any) -> None:
    """Machine output: exactly one JSON document on stdout, nothing else there. Results (and lists
    of them) are printed as their JSON objects (edgekit.core.result)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=_jsonable) + "\n")
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


def strict_hint(device: str, cannot: dict[str, str]) -> str:
    """One line: these budgets cannot be judged on `device`, so --strict fails there, and how to
    drop them (docs/results.md, "Budgets a device cannot judge")."""
    drop = " ".join(f"--budget {metric}=none" for metric in cannot)
    return (
        f"cannot be judged on {device}: {', '.join(cannot)}; every run there is unknown for "
        f"{'it' if len(cannot) == 1 else 'them'}, so --strict fails until dropped: {drop}"
    )


# Metrics shown in the verdict table only when measured or budgeted.
OPTIONAL_ROWS = frozenset({"min_accelerated_fraction"})


def result_table(result: Result) -> Table:
    """Every metric with its budget and verdict; unmeasured metrics show why."""
    checks = {c.metric: c for c in result.budget.checks}
    table = Table(title=_title(result), title_justify="left", show_lines=False)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_column("budget", justify="right")
    table.add_column("verdict")
    table.add_column("note", overflow="fold")
    if result.thermal is not None and result.thermal.suspect:
        table.caption = "[bold red]SUSPECT RUN[/]: " + "; ".join(result.thermal.suspect_reasons)
        table.caption_justify = "left"
    for metric, measured in metric_values(result).items():
        check = checks.get(metric)
        if metric in OPTIONAL_ROWS and check is None and (measured.value is None or not _accelerated(result)):
            continue  # no budget and no accelerator asked for (or an older agent): nothing to show
        unjudgeable = check.reason if check is not None and check.unjudgeable else None
        note = unjudgeable or measured.reason or (check.reason if check else None) or ""
        table.add_row(
            metric,
            fmt(measured.value),
            fmt(check.limit) if check else "",
            verdict_text(check.verdict) if check else "[dim]no budget[/]",
            note,
        )
    return table


def _accelerated(result: Result) -> bool:
    """Whether the run asked for an accelerator: a non-CPU provider or a TFLite delegate."""
    runtime = result.runtime or Runtime()
    asked = [name for name in runtime.requested_providers or [] if name not in CPU_PROVIDERS]
    return bool(asked) or runtime.delegate is not None


def ran_on(runtime: Runtime) -> str:
    """' on ggml + CPU': the providers that ran at least one node (runtime.placement), '' when
    the run has no placement or is a TFLite run (its delegate line says it)."""
    placement = runtime.placement
    if placement is None or not placement.by_provider or placement.source == "tflite_ops":
        return ""
    used = [_provider_label(name) for name, p in placement.by_provider.items() if p.nodes]
    return f" on {' + '.join(used)}" if used else ""


def _title(result: Result) -> str:
    device, runtime, latency = result.device, result.runtime or Runtime(), result.latency_ms
    return (
        f"{result.model.name} on {device.name} (profile {device.profile}) — "
        f"{runtime.name} {runtime.version}{ran_on(runtime)}, threads={runtime.threads}, "
        f"n={latency.n}" + (" — EMULATED (qemu): timings are not the board's" if device.emulated else "")
    )


def _cold_start_line(cold: ColdStart) -> str:
    """load (and, with onnxruntime, its split: session load / session init), first inference."""
    split = ""
    if cold.session_load is not None or cold.session_init is not None:
        split = f" (session load {fmt(cold.session_load)}, session init {fmt(cold.session_init)})"
    return f"cold start ms: load {fmt(cold.load)}{split}, first inference {fmt(cold.first_inference)}"


def _gpu_memory(memory: Memory) -> str:
    """The GPU memory peak (MB, its source and scope) for the memory line, when the board reported one."""
    gpu = memory.gpu_memory
    if gpu is None or gpu.peak_mb is None:
        return ""
    return f", GPU peak {gpu.peak_mb:.0f} MB ({gpu.source}, {gpu.scope or 'system'})"


def print_result(result: Result) -> None:
    stdout.print(result_table(result))
    latency, memory, thermal = result.latency_ms, result.memory or Memory(), result.thermal or Thermal()
    cold = result.cold_start_ms or ColdStart()
    details = [
        f"latency ms: mean {fmt(latency.mean)} ± {fmt(latency.std)}, "
        f"min {fmt(latency.min)}, max {fmt(latency.max)}, MAD {fmt(latency.mad)}",
        _rounds_line(result),
        _cold_start_line(cold),
        f"memory: model delta {_mib(memory.model_rss_delta_bytes)} ({memory.source})" + _gpu_memory(memory),
        _thermal_line(thermal),
        _energy_line(result),
    ]
    details += [line for line in (placement_line(result.runtime), engine_cache_line(result.runtime)) if line]
    outliers = latency.outliers
    if outliers.low or outliers.high:
        details.append(
            f"outliers ({outliers.rule}): {outliers.low} low, {outliers.high} high (kept in every statistic)"
        )
    for line in details:
        stdout.print(f"  {line}")
    cannot = {c.metric: c.reason or "" for c in result.budget.checks if c.unjudgeable}
    if cannot:  # the why is in each check's note above
        stdout.print(strict_hint(result.device.name, cannot), soft_wrap=True)
    run_id = result.run_id
    suspect = "  [bold red]SUSPECT[/] (throttled or started hot: see above)" if thermal.suspect else ""
    stdout.print(
        f"verdict: {verdict_text(result.budget.verdict)}" + (f"  (run {run_id})" if run_id else "") + suspect
    )


CPU_PROVIDERS = frozenset({"CPUExecutionProvider", "cpu", "CPU"})


def _provider_label(name: str) -> str:
    """An onnxruntime EP name as people say it: 'TensorrtExecutionProvider' -> 'Tensorrt'."""
    return "CPU" if name in CPU_PROVIDERS else name.removesuffix("ExecutionProvider") or name


def _nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def placement_line(runtime: Runtime | None) -> str | None:
    """Which provider ran how many nodes, e.g. 'placement: ggml 9/10 nodes (90%), CPU: Hardmax'
    (the op types left on the CPU, with a count above 1); None when the run has no placement."""
    placement = runtime.placement if runtime is not None else None
    if placement is None or not placement.by_provider:
        return None
    total = placement.total_nodes or sum(p.nodes for p in placement.by_provider.values())
    parts, cpu_ops = [], []
    for name, used in placement.by_provider.items():
        if name in CPU_PROVIDERS:
            cpu_ops = [f"{op} x{n}" if n > 1 else op for op, n in sorted((used.op_types or {}).items())]
            if not cpu_ops and used.nodes:
                cpu_ops = [_nodes(used.nodes)]
            continue
        if not used.nodes:
            continue  # listed by the session, ran nothing: not shown as used
        share = f" ({used.nodes / total:.0%})" if total else ""
        parts.append(f"{_provider_label(name)} {used.nodes}/{_nodes(total)}{share}")
    if not parts:
        asked = [name for name in runtime.requested_providers or [] if name not in CPU_PROVIDERS]
        why = f" (none ran on {', '.join(asked)})" if asked else ""
        parts.append(f"CPU only, {_nodes(total)}{why}")
    elif cpu_ops:
        parts.append("CPU: " + ", ".join(cpu_ops))
    approximate = ""
    if placement.source == "verbose_log":
        approximate = " [approximate: a compiled subgraph counts as 1 node]"
    return "placement: " + ", ".join(parts) + approximate + _chosen_by(runtime)


def _short_provider(name: str) -> str:
    """An onnxruntime EP name as edgekit names it: 'GgmlExecutionProvider' -> 'ggml'."""
    return _provider_label(name).lower()


def providers_cell(runtime: Runtime | None) -> str:
    """What ran a result, for a table cell: the providers (or TFLite delegate) asked for, then
    `→` what ran the nodes when that differs (runtime.placement; shares when split), e.g. 'cpu',
    'ggml → cpu' (asked for ggml, every node ran on the CPU), 'tensorrt → tensorrt 9/10, cpu 1/10';
    '—' for a run that records neither."""
    if runtime is None:
        return "—"
    delegate = runtime.delegate
    if delegate is not None:  # a TFLite run: the delegate asked for, the ones applied
        ran = ",".join(delegate.applied or []) or "cpu"
        asked = delegate.requested or "default"
        return asked if asked == ran else f"{asked} → {ran}"
    asked = ",".join(runtime.requested_providers or [])
    placement = runtime.placement
    used = (
        {_short_provider(name): p.nodes for name, p in (placement.by_provider or {}).items() if p.nodes}
        if placement is not None
        else {}
    )
    if not used:
        return asked or "—"
    total = placement.total_nodes if placement is not None and placement.total_nodes else sum(used.values())
    ran = ", ".join(used) if len(used) == 1 else ", ".join(f"{n} {k}/{total}" for n, k in used.items())
    return ran if not asked or asked == ran else f"{asked} → {ran}"


def _chosen_by(runtime: Runtime) -> str:
    """Where the providers or delegate came from, when not from the command line."""
    delegate = runtime.delegate
    if runtime.chosen_by == "profile":
        return " (the profile's [accelerators])"
    if delegate is not None and delegate.default_applied and delegate.requested in (None, "default"):
        return " (the interpreter's default delegate)"
    return ""


def engine_cache_line(runtime: Runtime | None) -> str | None:
    """'TensorRT engine: from the cache (trt-cache/ab12…, 12.0 MiB)' or 'built now, cached …';
    None when the run used no engine cache."""
    cache = runtime.engine_cache if runtime is not None else None
    if cache is None:
        return None
    how = "from the cache" if cache.hit else "built now and cached (--fresh-engine rebuilds it)"
    if cache.hit is None:
        how = "cache"
    evicted = f"; {cache.evicted} older engine(s) evicted" if cache.evicted else ""
    return f"TensorRT engine: {how} ({cache.dir}, {_mib(cache.size_bytes)}){evicted}"


def _rounds_line(result: Result) -> str:
    """The p50, its 95% interval and the spread between rounds and between processes."""
    latency = result.latency_ms
    interval = latency.ci95.get("p50")
    ci = f" [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else ""  # 4 digits: µs on a fast model
    rounds = latency.rounds or []
    processes = len({r.process for r in rounds}) or 1
    spread = "" if latency.round_spread_pct is None else f", round spread ±{latency.round_spread_pct:.1f}%"
    if latency.process_spread_pct is not None:
        spread += f", process spread ±{latency.process_spread_pct:.1f}%"
    plural = "" if len(rounds) == 1 else "s", "" if processes == 1 else "es"
    where = f" over {len(rounds)} round{plural[0]} in {processes} process{plural[1]}" if rounds else ""
    p50 = "—" if latency.p50 is None else f"{latency.p50:.4g}"
    return f"p50 ms: {p50}{ci} (95% interval){where}{spread}"


def _thermal_line(thermal: Thermal) -> str:
    reasons = thermal.null_reasons or {}
    if thermal.start_c is None:
        temps = reasons.get("start_c", "not measured")
    else:
        temps = f"start {fmt(thermal.start_c, 1)} °C, end {fmt(thermal.end_c, 1)} °C"
    throttled = thermal.throttled
    throttle = reasons.get("throttled", "unknown") if throttled is None else ("yes" if throttled else "no")
    ignored = [
        f"{z.zone} ({z.type}) {(z.null_reasons or {}).get('start_c')}"
        for z in thermal.zones or []
        if z.start_c is None and thermal.start_c is not None
    ]
    suffix = f"; ignored: {'; '.join(ignored)}" if ignored else ""
    return f"thermal: {temps}; throttled: {throttle}{suffix}"


def _energy_line(result: Result) -> str:
    energy = result.energy
    if energy is None:
        return f"energy: not measured ({result.null_reasons.get('energy', 'no sensor')})"
    return (
        f"energy: {fmt(energy.mj_per_inference)} ± {fmt(energy.mj_per_inference_uncertainty)} "
        f"mJ/inference above idle; {fmt(energy.avg_power_w)} W busy, "
        f"{fmt(energy.idle_power_w)} W idle ({energy.sensor}, "
        f"{energy.sample_count}+{energy.idle_sample_count} samples)"
    )


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 1048576:.1f} MiB"


class ProgressPrinter:
    """Turns agent progress events into a live line on a terminal, or sparse log lines otherwise:
    the first event of each phase (of each bench process), then at most one line every
    LOG_INTERVAL_S seconds, and the last count of the phase when it ends (its final total)."""

    LOG_INTERVAL_S = 10.0

    def __init__(self, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock  # seconds
        self._live = stderr.is_terminal
        self._last_key: tuple[str, Any] | None = None
        self._last_print = 0.0
        self._pending: str | None = None  # the phase's latest line, not printed yet

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        phase = str(event.get("phase", ""))
        key = (phase, event.get("process"))
        text = self.describe(event)
        now = self._clock()
        if self._live:  # rich drops a "\r" inside printed text: the line is rewritten by control codes
            stderr.control(_REWRITE_LINE)
            if phase != "done":
                stderr.print(Text(text, style="dim"), end="")
        elif key != self._last_key:
            self._flush()
            self._log(text, now)
        elif now - self._last_print >= self.LOG_INTERVAL_S or self._finished(event):
            self._log(text, now)
        else:
            self._pending = text
        self._last_key = key

    @staticmethod
    def _finished(event: dict[str, Any]) -> bool:
        done, total = event.get("done"), event.get("total")
        return isinstance(done, int) and isinstance(total, int) and total > 0 and done >= total

    def _log(self, text: str, now: float) -> None:
        stderr.print(text, markup=False)
        self._last_print = now
        self._pending = None

    def _flush(self) -> None:
        if self._pending is not None:
            stderr.print(self._pending, markup=False)
            self._pending = None

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
        if (event.get("processes") or 1) > 1:  # the bench's fresh child processes, one after another
            parts.append(f"(process {event.get('process')}/{event['processes']})")
        return " ".join(parts)
