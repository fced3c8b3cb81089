#!/usr/bin/env python3
"""edgekit device agent: one file, Python >= 3.8, stdlib + numpy + one inference runtime.

Speaks JSON lines on stdin/stdout (protocol 1, see docs/protocol.md); logs go to stderr.
Benchmarks run in a child process (this file with --bench-child) so that peak RSS is the
model's own and a crashing runtime becomes an error reply instead of a dead agent.

Every sysfs/procfs read goes through a root prefix (--sysfs-root, --procfs-root) so tests can
point the agent at fake trees in the kernel's exact formats. Each fact is a tiny reader plus a
pure parser (the parsers are unit-tested on recorded formats).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

AGENT_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20
PROGRESS_INTERVAL_S = 0.5
STDERR_TAIL_LINES = 20
TEST_CRASH_ENV = "EDGEKIT_AGENT_TEST_CRASH"  # test hook: the bench child kills itself with this signal

# Written by `edgekit lab up` into an emulated board's root filesystem (qemu user-mode emulation):
# that board's facts say "emulated", so its timings are never mistaken for the real board's.
EMULATION_MARKER = "/etc/edgekit-emulation.json"

RUNTIME_PACKAGES = {
    "onnxruntime": "onnxruntime",
    "tflite_runtime": "tflite-runtime",
    "ai_edge_litert": "ai-edge-litert",
}


class AgentFailure(Exception):
    """An error that becomes an error reply of the given protocol type."""

    def __init__(self, error_type: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.data = data

    def to_reply(self) -> Dict[str, Any]:
        return {"type": self.error_type, "message": self.message, "data": self.data}


def log(message: str) -> None:
    sys.stderr.write("edgekit-agent: %s\n" % message)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Pure parsers (recorded kernel / firmware formats; see shared/reference/sensor-formats.md)
# ---------------------------------------------------------------------------------------------


def parse_int(text: Optional[str]) -> Optional[int]:
    """A sysfs integer attribute: one ASCII value and a trailing newline."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_millidegrees(text: Optional[str]) -> Optional[float]:
    """thermal_zone*/temp is millidegrees Celsius ("48312\\n" -> 48.312)."""
    value = parse_int(text)
    return None if value is None else value / 1000.0


def parse_cpu_list(text: Optional[str]) -> Optional[List[int]]:
    """Kernel cpu lists such as "0-3" or "0,2-3" (Documentation/admin-guide/cputopology.rst)."""
    if text is None or not text.strip():
        return None
    cpus: List[int] = []
    try:
        for part in text.strip().split(","):
            if "-" in part:
                first, last = part.split("-", 1)
                cpus.extend(range(int(first), int(last) + 1))
            else:
                cpus.append(int(part))
    except ValueError:
        return None
    return cpus


def parse_meminfo(text: Optional[str]) -> Dict[str, int]:
    """/proc/meminfo lines "MemTotal:  3884096 kB" -> {"MemTotal": bytes}."""
    values: Dict[str, int] = {}
    for line in (text or "").splitlines():
        match = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?\s*$", line)
        if match:
            factor = 1024 if line.rstrip().endswith("kB") else 1
            values[match.group(1)] = int(match.group(2)) * factor
    return values


# ARM CPU part numbers (arch/arm64/include/asm/cputype.h), the ones edge boards carry.
ARM_CPU_PARTS = {
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD41: "Cortex-A78",
    0xD42: "Cortex-A78AE",
    0xD44: "Cortex-X1",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD4B: "Cortex-A78C",
    0xC07: "Cortex-A7",
    0xC09: "Cortex-A9",
    0xC0F: "Cortex-A15",
}


def parse_cpu_model(text: Optional[str]) -> Optional[str]:
    """CPU name from /proc/cpuinfo: x86 "model name", else ARM "CPU part" (+ "Hardware")."""
    fields: Dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    if fields.get("model name"):
        return fields["model name"]
    part = fields.get("CPU part")
    if part:
        try:
            name = ARM_CPU_PARTS.get(int(part, 16), "ARM part %s" % part)
        except ValueError:
            name = None
        if name:
            hardware = fields.get("Hardware")
            return "%s (%s)" % (name, hardware) if hardware else name
    return fields.get("Hardware") or fields.get("Processor") or None


def parse_device_tree_string(raw: Optional[bytes]) -> Optional[str]:
    """Device-tree string properties are NUL-terminated with no newline."""
    if raw is None:
        return None
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return text or None


# Raspberry Pi firmware get_throttled bits (vcgencmd(1), raspberrypi/documentation).
THROTTLE_BITS = {
    0: "under_voltage",
    1: "arm_freq_capped",
    2: "throttled",
    3: "soft_temp_limit",
    16: "under_voltage_occurred",
    17: "arm_freq_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temp_limit_occurred",
}


def parse_throttled(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """ "throttled=0x50000" (vcgencmd) or "50000" / "0x50000" (sysfs) -> decoded bits."""
    if text is None:
        return None
    match = re.fullmatch(r"(?:throttled=)?(0x[0-9a-fA-F]+|[0-9a-fA-F]+)", text.strip())
    if not match:
        return None
    try:
        bits = int(match.group(1), 16)
    except ValueError:
        return None
    flags = [name for bit, name in sorted(THROTTLE_BITS.items()) if bits & (1 << bit)]
    # "now" bits 1-3 mean the clocks are held down at this moment.
    return {"raw": "0x%x" % bits, "flags": flags, "throttled_now": bool(bits & 0b1110)}


# ---------------------------------------------------------------------------------------------
# Readers (I/O only; every failure -> None)
# ---------------------------------------------------------------------------------------------


class Host:
    """Where facts are read from: real / or a fake tree."""

    def __init__(self, sysfs_root: str = "/sys", procfs_root: str = "/proc") -> None:
        self.sysfs_root = sysfs_root
        self.procfs_root = procfs_root

    def sys_path(self, relative: str) -> str:
        return os.path.join(self.sysfs_root, relative.lstrip("/"))

    def proc_path(self, relative: str) -> str:
        return os.path.join(self.procfs_root, relative.lstrip("/"))

    @staticmethod
    def read_text(path: str) -> Optional[str]:
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as handle:
                return handle.read(1 << 20)
        except (OSError, ValueError):
            return None

    @staticmethod
    def read_bytes(path: str) -> Optional[bytes]:
        try:
            with open(path, "rb") as handle:
                return handle.read(1 << 16)
        except OSError:
            return None

    def sys_text(self, relative: str) -> Optional[str]:
        return self.read_text(self.sys_path(relative))

    def list_sys(self, relative: str, pattern: str) -> List[str]:
        try:
            names = os.listdir(self.sys_path(relative))
        except OSError:
            return []
        regex = re.compile(pattern)
        return sorted((n for n in names if regex.fullmatch(n)), key=_natural_key)


def _natural_key(name: str) -> Tuple[str, int]:
    match = re.match(r"^(.*?)(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


def read_thermal_zones(host: Host) -> List[Dict[str, Any]]:
    zones = []
    for zone in host.list_sys("class/thermal", r"thermal_zone\d+"):
        temp = parse_millidegrees(host.sys_text("class/thermal/%s/temp" % zone))
        zone_type = (host.sys_text("class/thermal/%s/type" % zone) or "").strip() or None
        zones.append({"zone": zone, "type": zone_type, "temp_c": temp})
    return zones


def read_cpufreq(host: Host) -> List[Dict[str, Any]]:
    readings = []
    for cpu in host.list_sys("devices/system/cpu", r"cpu\d+"):
        base = "devices/system/cpu/%s/cpufreq/" % cpu
        governor = host.sys_text(base + "scaling_governor")
        if governor is None and not os.path.isdir(host.sys_path(base)):
            continue
        readings.append(
            {
                "cpu": int(cpu[3:]),
                "governor": governor.strip() if governor else None,
                # cpuinfo_cur_freq is root-only; scaling_cur_freq is world-readable.
                "cur_khz": parse_int(host.sys_text(base + "scaling_cur_freq")),
                "min_khz": parse_int(host.sys_text(base + "scaling_min_freq")),
                "max_khz": parse_int(host.sys_text(base + "scaling_max_freq")),
            }
        )
    return readings


def read_throttled(host: Host) -> Dict[str, Any]:
    sysfs_text = host.sys_text("devices/platform/soc/soc:firmware/get_throttled")
    decoded = parse_throttled(sysfs_text)
    if decoded is not None:
        return {"value": decoded["throttled_now"], "source": "rpi-firmware-sysfs", **decoded}
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        try:
            output = subprocess.run(
                [vcgencmd, "get_throttled"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=2,
                check=False,
            )
            decoded = parse_throttled(output.stdout.decode("utf-8", "replace"))
        except (OSError, subprocess.SubprocessError) as exc:
            return {"value": None, "source": "vcgencmd", "reason": "vcgencmd failed: %s" % exc}
        if output.returncode == 0 and decoded is not None:
            return {"value": decoded["throttled_now"], "source": "vcgencmd", **decoded}
        return {
            "value": None,
            "source": "vcgencmd",
            "reason": "vcgencmd get_throttled failed (exit %d)" % output.returncode,
        }
    return {"value": None, "source": None, "reason": "no throttle source on this board"}


def sensors_snapshot(host: Host) -> Dict[str, Any]:
    zones = read_thermal_zones(host)
    temps = [z["temp_c"] for z in zones if z["temp_c"] is not None]
    return {
        "thermal_zones": zones,
        "cpufreq": read_cpufreq(host),
        "throttled": read_throttled(host),
        "max_temp_c": max(temps) if temps else None,
        "time_unix": time.time(),
    }


def package_version(distribution: str) -> Optional[str]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return metadata.version(distribution)
    except Exception:
        return None


def disk_free_bytes(path: str) -> Optional[int]:
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        return shutil.disk_usage(probe or "/").free
    except OSError:
        return None


def parse_emulation(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """The emulation marker's JSON object (emulator, what board it stands for), None when absent."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"emulator": "unknown", "reason": "unreadable %s" % EMULATION_MARKER}
    return data if isinstance(data, dict) else {"emulator": "unknown"}


def device_facts(host: Host, workdir: str = "~") -> Dict[str, Any]:
    cpufreq = read_cpufreq(host)
    first = cpufreq[0] if cpufreq else {}
    meminfo = parse_meminfo(host.read_text(host.proc_path("meminfo")))
    zones = read_thermal_zones(host)
    emulation = parse_emulation(host.read_text(EMULATION_MARKER))
    return {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "system": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpu_model": parse_cpu_model(host.read_text(host.proc_path("cpuinfo"))),
        "cores": os.cpu_count(),
        "cores_online": parse_cpu_list(host.sys_text("devices/system/cpu/online")),
        "memory_total_bytes": meminfo.get("MemTotal"),
        "memory_available_bytes": meminfo.get("MemAvailable"),
        "workdir": os.path.expanduser(workdir),
        "disk_free_bytes": disk_free_bytes(os.path.expanduser(workdir)),
        "board_model": parse_device_tree_string(host.read_bytes(host.proc_path("device-tree/model"))),
        "governor": first.get("governor"),
        "cur_freq_khz": first.get("cur_khz"),
        "max_freq_khz": first.get("max_khz"),
        "runtimes": {name: package_version(dist) for name, dist in RUNTIME_PACKAGES.items()},
        "numpy": package_version("numpy"),
        "temperatures_c": {"%s:%s" % (z["zone"], z["type"]): z["temp_c"] for z in zones},
        "throttled": read_throttled(host),
        "emulated": emulation is not None,
        "emulation": emulation,
    }


# ---------------------------------------------------------------------------------------------
# Runtimes (imported only in the bench child)
# ---------------------------------------------------------------------------------------------


class OnnxRuntimeModel:
    name = "onnxruntime"

    def __init__(self, path: str, threads: Optional[int]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise AgentFailure(
                "ModelLoadError", "onnxruntime cannot load %s: %s" % (path, _first_line(exc))
            ) from None
        self.version = ort.__version__
        self.threads = threads
        self.providers = self.session.get_providers()
        self.output_names = [o.name for o in self.session.get_outputs()]

    def input_names(self) -> List[str]:
        return [i.name for i in self.session.get_inputs()]

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        session, names = self.session, self.output_names

        def run() -> Any:
            return session.run(names, feeds)

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return [
            {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
            for name, value in zip(self.output_names, values)
        ]


class TFLiteModel:
    name = "tflite"

    def __init__(self, path: str, threads: Optional[int]) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter  # successor of tflite-runtime

            version = package_version("ai-edge-litert")
        except ImportError:
            try:
                from tflite_runtime.interpreter import Interpreter

                version = package_version("tflite-runtime")
            except ImportError:
                raise AgentFailure(
                    "RuntimeMissing", "no TFLite runtime: pip install ai-edge-litert"
                ) from None
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise AgentFailure(
                "ModelLoadError", "TFLite cannot load %s: %s" % (path, _first_line(exc))
            ) from None
        self.version = version
        self.threads = threads
        self.providers = ["CPU"]
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()

    def input_names(self) -> List[str]:
        return [d["name"] for d in self._inputs]

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        interpreter = self.interpreter
        for detail in self._inputs:
            value = feeds[detail["name"]]
            if list(detail["shape"]) != list(value.shape):
                interpreter.resize_tensor_input(detail["index"], list(value.shape))
        interpreter.allocate_tensors()
        pairs = [(d["index"], feeds[d["name"]]) for d in self._inputs]
        outputs = [d["index"] for d in self._outputs]

        def run() -> Any:
            for index, value in pairs:
                interpreter.set_tensor(index, value)
            interpreter.invoke()
            return [interpreter.get_tensor(i) for i in outputs]

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return [
            {"name": d["name"], "shape": list(v.shape), "dtype": str(v.dtype)}
            for d, v in zip(self._outputs, values)
        ]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def runtime_for(path: str, runtime: str) -> str:
    if runtime == "auto":
        return "tflite" if path.endswith(".tflite") else "onnxruntime"
    if runtime not in ("onnxruntime", "tflite"):
        raise AgentFailure("BadRequest", "unknown runtime %r (onnxruntime, tflite, auto)" % runtime)
    return runtime


def open_model(path: str, runtime: str, threads: Optional[int]) -> Any:
    if not os.path.isfile(path):
        raise AgentFailure("ArtifactNotFound", "no such artifact on the device: %s" % path, path=path)
    if runtime == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise AgentFailure(
                "RuntimeMissing", "onnxruntime is not installed: pip install onnxruntime"
            ) from None
        return OnnxRuntimeModel(path, threads)
    return TFLiteModel(path, threads)


def build_feeds(params: Dict[str, Any], input_names: List[str]) -> Dict[str, Any]:
    import numpy as np

    spec = params.get("inputs") or {}
    missing = [name for name in input_names if name not in spec]
    if missing:
        raise AgentFailure("InputError", "no input spec for %s" % ", ".join(missing), inputs=missing)
    inputs_file = params.get("inputs_file")
    arrays: Dict[str, Any] = {}
    if inputs_file:
        try:
            with np.load(inputs_file, allow_pickle=False) as data:
                arrays = {name: data[name] for name in input_names if name in data.files}
        except (OSError, ValueError) as exc:
            raise AgentFailure("InputError", "cannot read inputs file %s: %s" % (inputs_file, exc)) from None
    rng = np.random.default_rng(int(params.get("seed", 0)))
    feeds: Dict[str, Any] = {}
    for name in input_names:
        shape = [int(d) for d in spec[name]["shape"]]
        try:
            dtype = np.dtype(spec[name]["dtype"])
        except TypeError:
            raise AgentFailure(
                "InputError", "input %r: unknown dtype %r" % (name, spec[name]["dtype"])
            ) from None
        if inputs_file:
            if name not in arrays:
                raise AgentFailure("InputError", "inputs file has no array %r" % name, input=name)
            value = arrays[name]
            if value.ndim and shape:
                value = value[: shape[0]]
            feeds[name] = np.ascontiguousarray(value.astype(dtype, copy=False))
        elif dtype.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[name] = np.ones(shape, dtype=dtype)
        else:
            feeds[name] = np.ones(shape, dtype=dtype)
    return feeds


# ---------------------------------------------------------------------------------------------
# The bench child
# ---------------------------------------------------------------------------------------------


def read_status_bytes(field: str) -> Optional[int]:
    """VmRSS / VmHWM of this process from the real /proc (not the fake device tree)."""
    return parse_meminfo(Host.read_text("/proc/self/status")).get(field)


def current_rss() -> Optional[int]:
    """Resident memory now: procfs, else psutil when installed (hosts without /proc)."""
    value = read_status_bytes("VmRSS")
    if value is None:
        try:
            import psutil

            value = int(psutil.Process().memory_info().rss)
        except Exception:
            value = None
    return value


def peak_rss() -> Tuple[Optional[int], str]:
    value = read_status_bytes("VmHWM")
    if value is not None:
        return value, "procfs:VmHWM"
    try:
        import resource

        factor = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * factor, "getrusage"
    except (ImportError, OSError):
        return None, "unavailable"


class Emitter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, message: Dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def run_bench(params: Dict[str, Any], host: Host, emit: Callable[[Dict[str, Any]], None]) -> Dict[str, Any]:
    artifact = params.get("artifact")
    if not isinstance(artifact, str) or not artifact:
        raise AgentFailure("BadRequest", "bench needs params.artifact (a path on the device)")
    runs = int(params.get("runs", 100))
    warmup = int(params.get("warmup", 10))
    min_seconds = float(params.get("min_seconds", 2.0))
    max_seconds = float(params.get("max_seconds", 600.0))
    threads = params.get("threads")
    threads = int(threads) if threads else None

    crash = os.environ.get(TEST_CRASH_ENV)
    if crash:
        os.kill(os.getpid(), getattr(signal, crash))

    runtime = runtime_for(artifact, str(params.get("runtime", "auto")))
    started = time.perf_counter()
    emit({"event": "progress", "phase": "load", "done": 0, "total": 1, "elapsed_s": 0.0})
    # Import numpy and the runtime before the baseline so that only the model counts as its delta.
    import numpy  # noqa: F401

    if runtime == "onnxruntime":
        with contextlib.suppress(ImportError):  # open_model reports RuntimeMissing
            import onnxruntime  # noqa: F401
    baseline_rss = current_rss()

    t0 = time.perf_counter_ns()
    model = open_model(artifact, runtime, threads)
    load_ns = time.perf_counter_ns() - t0
    feeds = build_feeds(params, model.input_names())
    run = model.make_runner(feeds)
    t0 = time.perf_counter_ns()
    try:
        first_outputs = run()
    except Exception as exc:
        raise AgentFailure("InferenceError", "first inference failed: %s" % _first_line(exc)) from None
    first_ns = time.perf_counter_ns() - t0
    after_load_rss = current_rss()

    def progress(phase: str, done: int, total: int) -> None:
        emit(
            {
                "event": "progress",
                "phase": phase,
                "done": done,
                "total": total,
                "elapsed_s": round(time.perf_counter() - started, 3),
            }
        )

    next_report = time.perf_counter() + PROGRESS_INTERVAL_S
    for index in range(warmup):
        run()
        if time.perf_counter() >= next_report:
            progress("warmup", index + 1, warmup)
            next_report = time.perf_counter() + PROGRESS_INTERVAL_S

    sensors_start = sensors_snapshot(host)
    latencies: List[int] = []
    append = latencies.append
    clock = time.perf_counter_ns
    window_start_unix = time.time()
    window_start = clock()
    min_ns = int(min_seconds * 1e9)
    max_ns = int(max_seconds * 1e9)
    report_every_ns = int(PROGRESS_INTERVAL_S * 1e9)
    next_report_ns = window_start + report_every_ns
    while True:
        t0 = clock()
        run()
        t1 = clock()
        append(t1 - t0)
        elapsed = t1 - window_start
        if (len(latencies) >= runs and elapsed >= min_ns) or elapsed >= max_ns:
            break
        if t1 >= next_report_ns:
            progress("timed", len(latencies), runs)
            next_report_ns = t1 + report_every_ns
    window_ns = clock() - window_start
    sensors_end = sensors_snapshot(host)
    progress("timed", len(latencies), runs)

    peak, source = peak_rss()
    return {
        "runtime": {
            "name": model.name,
            "version": model.version,
            "threads": model.threads,
            "providers": model.providers,
        },
        "latencies_ns": latencies,
        "warmup_runs": warmup,
        "cold_start_ms": {"load": load_ns / 1e6, "first_inference": first_ns / 1e6},
        "memory": {
            "baseline_rss_bytes": baseline_rss,
            "after_load_rss_bytes": after_load_rss,
            "peak_rss_bytes": peak,
            "source": source,
        },
        "sensors_start": sensors_start,
        "sensors_end": sensors_end,
        "window": {
            "started_unix": window_start_unix,
            "duration_s": window_ns / 1e9,
            "capped_by_max_seconds": window_ns >= max_ns,
        },
        "outputs": model.outputs(first_outputs),
    }


def bench_child_main(host: Host) -> int:
    emit = Emitter(sys.stdout)
    try:
        params = json.loads(sys.stdin.readline())
        result = run_bench(params, host, emit)
        emit({"ok": True, "result": result})
    except AgentFailure as failure:
        emit({"ok": False, "error": failure.to_reply()})
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit({"ok": False, "error": {"type": "Internal", "message": _first_line(exc), "data": {}}})
    return 0


# ---------------------------------------------------------------------------------------------
# The device lock: one benchmark at a time per board
# ---------------------------------------------------------------------------------------------


class DeviceLock:
    """An exclusive flock on <workdir>/bench.lock (or --lock-file), held for the whole bench.

    The kernel drops a flock when its holder dies, so a lock left by a killed process is
    recovered by the next caller without any cleanup; the file only says who holds it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: Optional[IO[str]] = None

    def acquire(
        self, timeout_s: float, holder: Dict[str, Any], on_wait: Callable[[str], None] = lambda held_by: None
    ) -> None:
        try:
            import fcntl
        except ImportError:  # not a POSIX board: no locking
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open: it is the lock
        deadline = time.monotonic() + timeout_s
        next_notice = time.monotonic()
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                handle.seek(0)
                held_by = handle.read().strip() or "unknown"
                if time.monotonic() >= next_notice:
                    on_wait(held_by)
                    next_notice = time.monotonic() + 2.0
                if time.monotonic() >= deadline:
                    handle.close()
                    raise AgentFailure(
                        "DeviceBusy",
                        "device busy (held by %s); waited %.0f s" % (held_by, timeout_s),
                        holder=held_by,
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder, sort_keys=True))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing drops the flock
            self.handle = None


# ---------------------------------------------------------------------------------------------
# The long-lived agent
# ---------------------------------------------------------------------------------------------


def signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return "signal %d" % -returncode
    return "exit %d" % returncode


class Agent:
    def __init__(
        self, host: Host, argv_tail: List[str], out: IO[str], workdir: str, lock_file: Optional[str] = None
    ) -> None:
        self.host = host
        self.argv_tail = argv_tail
        self.emit = Emitter(out)
        self.workdir = workdir
        self.lock_file = lock_file or os.path.join(workdir, "bench.lock")

    def reply_ok(self, request_id: Any, result: Any) -> None:
        self.emit({"id": request_id, "ok": True, "result": result})

    def reply_error(self, request_id: Any, failure: AgentFailure) -> None:
        self.emit({"id": request_id, "ok": False, "error": failure.to_reply()})

    def handle_line(self, raw: bytes) -> bool:
        """Handle one request line; False when the agent should stop."""
        try:
            message = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.reply_error(None, AgentFailure("BadRequest", "not a JSON line: %s" % exc))
            return True
        if not isinstance(message, dict):
            self.reply_error(None, AgentFailure("BadRequest", "a request must be a JSON object"))
            return True
        request_id = message.get("id")
        op = message.get("op")
        params = message.get("params", {})
        if request_id is None or not isinstance(op, str):
            self.reply_error(request_id, AgentFailure("BadRequest", "a request needs an id and an op"))
            return True
        if not isinstance(params, dict):
            self.reply_error(request_id, AgentFailure("BadRequest", "params must be an object"))
            return True
        handler = {"hello": self.op_hello, "sensors": self.op_sensors, "bench": self.op_bench}.get(op)
        if op == "bye":
            self.reply_ok(request_id, {"bye": True})
            return False
        if handler is None:
            self.reply_error(
                request_id,
                AgentFailure("UnknownOp", "unknown op %r (hello, sensors, bench, bye)" % op, op=op),
            )
            return True
        try:
            self.reply_ok(request_id, handler(request_id, params))
        except AgentFailure as failure:
            self.reply_error(request_id, failure)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.reply_error(
                request_id, AgentFailure("Internal", "%s: %s" % (exc.__class__.__name__, _first_line(exc)))
            )
        return True

    def op_hello(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "agent_version": AGENT_VERSION,
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "facts": device_facts(self.host, self.workdir),
        }

    def op_sensors(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        return sensors_snapshot(self.host)

    def op_bench(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        lock = DeviceLock(self.lock_file)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "artifact": os.path.basename(str(params.get("artifact", ""))),
        }

        def waiting(held_by: str) -> None:
            self.emit(
                {
                    "id": request_id,
                    "event": "progress",
                    "phase": "lock",
                    "message": "waiting for the device lock held by %s" % held_by,
                }
            )

        lock.acquire(float(params.get("lock_timeout_s", 600.0)), holder, waiting)
        try:
            return self.run_bench_child(request_id, params)
        finally:
            lock.release()

    def run_bench_child(self, request_id: Any, params: Dict[str, Any]) -> Dict[str, Any]:
        argv = [sys.executable, os.path.abspath(__file__), "--bench-child", *self.argv_tail]
        child = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stderr_tail: List[str] = []

        def drain_stderr(stream: IO[bytes]) -> None:
            for line in stream:
                text = line.decode("utf-8", "replace").rstrip("\n")
                sys.stderr.write(text + "\n")
                stderr_tail.append(text)
                del stderr_tail[:-STDERR_TAIL_LINES]

        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        threading.Thread(target=drain_stderr, args=(child.stderr,), daemon=True).start()
        try:
            child.stdin.write((json.dumps(params) + "\n").encode("utf-8"))
            child.stdin.close()
        except OSError:
            pass
        final: Optional[Dict[str, Any]] = None
        for line in child.stdout:
            try:
                message = json.loads(line.decode("utf-8"))
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("event") == "progress":
                self.emit(dict(message, id=request_id))
            elif "ok" in message:
                final = message
        returncode = child.wait()
        if final is None:
            tail = " | ".join(stderr_tail[-5:])
            raise AgentFailure(
                "ChildCrashed",
                "the benchmark process died (%s)%s" % (signal_name(returncode), ": " + tail if tail else ""),
                returncode=returncode,
                signal=signal_name(returncode) if returncode < 0 else None,
            )
        if final.get("ok"):
            return final["result"]
        error = final.get("error") or {}
        raise AgentFailure(
            str(error.get("type", "Internal")), str(error.get("message", "")), **(error.get("data") or {})
        )

    def serve(self, stream: IO[bytes]) -> int:
        while True:
            raw = stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return 0
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while True:  # drain the rest of the oversized line
                    rest = stream.readline(MAX_LINE_BYTES)
                    if not rest or rest.endswith(b"\n"):
                        break
                self.reply_error(
                    None, AgentFailure("LineTooLong", "request line longer than %d bytes" % MAX_LINE_BYTES)
                )
                continue
            if not raw.strip():
                continue
            if not self.handle_line(raw):
                return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="edgekit device agent (JSON lines on stdin/stdout)")
    parser.add_argument("--sysfs-root", default="/sys")
    parser.add_argument("--procfs-root", default="/proc")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--lock-file", default=None, help="the device lock (default: WORKDIR/bench.lock)")
    parser.add_argument("--bench-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version="edgekit-agent %s" % AGENT_VERSION)
    args = parser.parse_args(argv)
    host = Host(args.sysfs_root, args.procfs_root)
    if args.bench_child:
        return bench_child_main(host)
    tail = ["--sysfs-root", args.sysfs_root, "--procfs-root", args.procfs_root]
    # Protocol lines only on stdout: anything else that prints goes to stderr.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr
    stdin = os.fdopen(sys.stdin.fileno(), "rb")
    workdir = os.path.expanduser(args.workdir or "~/.edgekit")
    return Agent(host, tail, protocol_out, workdir, args.lock_file).serve(stdin)


if __name__ == "__main__":
    sys.exit(main())
