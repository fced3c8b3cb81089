"""The power sampler: one sensor read in a daemon thread while the benchmark runs."""

from __future__ import annotations

import threading
import time
from typing import List, Optional, Tuple

from edgekit_agent.failure import AgentFailure
from edgekit_agent.sensors.readers import PowerReader

Sample = Tuple[float, float]  # (perf_counter seconds, watts or cumulative joules)


class PowerSampler:
    """Reads one sensor in a daemon thread every interval_s, sleeping on an Event in between,
    so the inference loop pays for one short read per interval and nothing else. start() and
    stop() each take a sample themselves, so the samples bracket the window."""

    def __init__(self, reader: PowerReader) -> None:
        self.reader = reader
        self.samples: List[Sample] = []
        self.error: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> None:
        try:
            t0 = time.perf_counter()
            value = self.reader.read()
            self.samples.append(((t0 + time.perf_counter()) / 2.0, value))
        except AgentFailure as failure:
            self.error = failure.message
            self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.reader.interval_s):
            self._sample()

    def start(self) -> None:
        """A new window. After a failed read the sensor stays failed: `error` says why."""
        self.samples = []
        if self.error is not None:
            return
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="edgekit-power", daemon=True)
        self._thread.start()

    def stop(self) -> List[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.error is None:
            self._sample()
        return self.samples
