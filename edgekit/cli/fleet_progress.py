"""Progress of a fleet run: a live row per busy device on a terminal, plain log lines otherwise.

With hundreds of devices only the ones being worked on (at most max_parallel) have a row; a finished
device leaves one line above the live display and moves the overall bar.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from edgekit.cli.output import ProgressPrinter, stderr


class FleetProgress:
    def __init__(self, devices: int, cells: int) -> None:
        self.cells = cells
        self._lock = threading.Lock()  # events arrive from every device's thread
        self._finished = 0
        self._devices = devices
        self._live = stderr.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        )
        self._rows: dict[str, TaskID] = {}
        self._overall: TaskID | None = None

    def __enter__(self) -> FleetProgress:
        if self._live:
            self._progress.start()
            self._overall = self._progress.add_task("devices done", total=self._devices)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            device, phase = event["device"], event["phase"]
            if phase == "done":
                self._finished += 1
            line = self._line(device, phase, event)
            if self._live:
                self._update_row(device, phase, event)
                if line and phase != "cell":
                    self._progress.console.print(line, markup=False, highlight=False)
            elif line:
                stderr.print(line, markup=False, highlight=False)

    def _line(self, device: str, phase: str, event: dict[str, Any]) -> str | None:
        counter = f"[{self._finished}/{self._devices} devices]"
        if phase == "cell":
            return f"{counter} {device}: {event['index'] + 1}/{self.cells} {event['message']}"
        if phase == "failed":
            return f"{counter} {device}: FAILED {event['message']}"
        if phase == "done":
            return f"{counter} {device}: done, {event['message']}"
        return None  # start and bench-level events only move the live rows

    def _update_row(self, device: str, phase: str, event: dict[str, Any]) -> None:
        if phase == "start":
            self._rows[device] = self._progress.add_task(device, total=self.cells)
        row = self._rows.get(device)
        if row is None:
            return
        if phase == "cell":
            self._progress.update(row, completed=event["index"], description=f"{device}: {event['message']}")
        elif phase == "bench":
            detail = ProgressPrinter.describe(event["bench"])
            self._progress.update(row, description=f"{device}: {detail}")
        elif phase == "done":
            self._progress.remove_task(self._rows.pop(device))
            if self._overall is not None:
                self._progress.update(self._overall, completed=self._finished)
