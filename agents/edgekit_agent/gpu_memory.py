"""GPU memory over the timed window, next to peak RSS (docs/protocol.md, bench `memory.gpu_memory`).

- Jetson: `tegrastats --interval MS` runs (as this process's own child) while the window runs;
  each line is parsed by facts.jetson.parse_tegrastats and the peak `RAM used` is kept. The GPU
  shares the RAM, so it is unified memory, system-wide (all processes), in MB
  (docs/reference/jetson-tools.md). The tool is stopped (SIGTERM, then SIGKILL) after the window.
- Discrete NVIDIA GPU: NVML through the `pynvml` module (package nvidia-ml-py) when importable,
  polled in a thread: this process's used GPU memory when NVML lists it, else the device's used
  memory (system-wide), MB.
- Neither: None (the reply's gpu_memory is null).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from typing import Any, Dict, List, Optional

from edgekit_agent.child_process import stop_child
from edgekit_agent.facts.jetson import parse_tegrastats

INTERVAL_MS = 100  # tegrastats' --interval and the NVML poll period
MIB = 1024 * 1024


class GpuMemoryWatch:
    """start() before the timed window, stop() after it -> {"peak_mb", "source", "scope",
    "samples"} or None when the board reports no GPU memory. Never raises."""

    def __init__(self, interval_ms: int = INTERVAL_MS) -> None:
        self.interval_ms = interval_ms
        self.source: Optional[str] = None
        self.scope: Optional[str] = None
        self.values: List[float] = []
        self.reason: Optional[str] = None
        self._process: Optional["subprocess.Popen[bytes]"] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def start(self) -> None:
        tegrastats = shutil.which("tegrastats")
        if tegrastats:
            self._start_tegrastats(tegrastats)
        else:
            self._start_nvml()

    def _start_tegrastats(self, tool: str) -> None:
        try:
            self._process = subprocess.Popen(
                [tool, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            self.source, self.reason = "tegrastats", "tegrastats did not start: %s" % exc
            return
        self.source, self.scope = "tegrastats", "system"
        self._thread = threading.Thread(target=self._read_tegrastats, name="edgekit-tegrastats", daemon=True)
        self._thread.start()

    def _read_tegrastats(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for raw in process.stdout:
            parsed = parse_tegrastats(raw.decode("utf-8", "replace"))
            if parsed is not None:
                self.values.append(float(parsed["ram_used_mb"]))

    def _start_nvml(self) -> None:
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # not installed, no driver, no GPU: no GPU memory to report
            return
        self.source = "nvml"
        self._sample_nvml(pynvml, handle)
        self._thread = threading.Thread(
            target=self._poll_nvml, args=(pynvml, handle), name="edgekit-nvml", daemon=True
        )
        self._thread.start()

    def _sample_nvml(self, pynvml: Any, handle: Any) -> None:
        try:
            pid = os.getpid()
            mine = [
                p.usedGpuMemory
                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                if p.pid == pid and p.usedGpuMemory
            ]
            if mine:
                self.scope = "process"
                self.values.append(sum(mine) / MIB)
            elif self.scope != "process":
                self.scope = "system"
                self.values.append(pynvml.nvmlDeviceGetMemoryInfo(handle).used / MIB)
        except Exception as exc:  # a read that fails ends the polling; the peak so far stays
            self.reason = "nvml: %s" % exc
            self._stop.set()

    def _poll_nvml(self, pynvml: Any, handle: Any) -> None:
        while not self._stop.wait(self.interval_ms / 1000.0):
            self._sample_nvml(pynvml, handle)

    def stop(self) -> Optional[Dict[str, Any]]:
        self._stop.set()
        if self._process is not None:
            stop_child(self._process)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.source is None:
            return None
        reason = self.reason or (None if self.values else "no %s sample within the window" % self.source)
        return {
            "peak_mb": max(self.values) if self.values else None,
            "source": self.source,
            "scope": self.scope,
            "samples": len(self.values),
            **({"reason": reason} if reason else {}),
        }
