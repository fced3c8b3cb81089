"""The local spool: writes a results store could not take, kept until it answers again.

A result (or the end of a fleet plan run) that cannot be written because the store did not answer
(a PostgreSQL server restarting, a network blip, a SQLite file locked past its busy timeout) is
written to one JSON file under `$EDGEKIT_HOME/spool/<store key>/`, atomically (a reader sees a
whole file or none: edgekit.core.atomic). The next run that opens that store for writing, and
`edgekit store flush`, write the spooled entries oldest first and remove each file only after its
transaction committed; the insert is idempotent by run id, so an entry written twice (a commit
whose acknowledgement was lost, two flushes at once) is stored once.

Entry file, one JSON object:
    {"spool": 1, "store": LOCATION (password masked), "spooled_at": ISO-8601 UTC,
     "kind": "run", "run_id": ID, "plan_cell": [PLAN_RUN_ID, DEVICE, CELL] | null, "result": {...}}
    {"spool": 1, ..., "kind": "finish_plan_run", "plan_run_id": ID, "finished_at": ISO-8601 UTC}
File name: `<nanoseconds since the epoch, 20 digits>-<run id or plan run id>.json`, so that the
names sort oldest first.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgekit.core.atomic import write_text_atomic
from edgekit.core.errors import StoreError, UsageError
from edgekit.core.resources import edgekit_home
from edgekit.core.result import Result, load_result

SPOOL_FORMAT = 1
RUN = "run"
FINISH_PLAN_RUN = "finish_plan_run"


def spool_root() -> Path:
    return edgekit_home() / "spool"


@dataclass(frozen=True)
class PendingWrite:
    """One write to a store: a run (with the fleet cell it finishes), or the end of a plan run."""

    kind: str  # RUN | FINISH_PLAN_RUN
    result: Result | None = None
    plan_cell: tuple[str, str, str] | None = None
    plan_run_id: str = ""
    finished_at: str = ""

    @property
    def key(self) -> str:
        """The run id, or the plan run id for the end of a plan run."""
        if self.result is not None:
            return self.result.run_id or ""
        return self.plan_run_id

    @property
    def what(self) -> str:
        """For messages: 'run ID' or 'the end of plan run ID'."""
        return f"run {self.key}" if self.kind == RUN else f"the end of plan run {self.key}"

    def to_json(self, store: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "spool": SPOOL_FORMAT,
            "store": store,
            "spooled_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "kind": self.kind,
        }
        if self.kind == RUN and self.result is not None:
            data.update(
                run_id=self.result.run_id,
                plan_cell=list(self.plan_cell) if self.plan_cell else None,
                result=self.result.to_dict(),
            )
        else:
            data.update(plan_run_id=self.plan_run_id, finished_at=self.finished_at)
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> PendingWrite:
        """The entry a spool file holds; StoreError (one line naming `where`) when it is not one."""
        if not isinstance(data, dict) or data.get("spool") != SPOOL_FORMAT:
            raise StoreError(f"{where}: not an edgekit spool entry (format {SPOOL_FORMAT})", path=where)
        kind = data.get("kind")
        if kind == RUN:
            cell = data.get("plan_cell")
            if cell is not None and not (isinstance(cell, list) and len(cell) == 3):
                raise StoreError(f"{where}: plan_cell is not [plan run id, device, cell]", path=where)
            result = load_result(data.get("result"), where, StoreError)
            if not result.run_id or result.run_id != data.get("run_id"):
                raise StoreError(f"{where}: the result's run id does not match the entry's", path=where)
            return cls(RUN, result=result, plan_cell=tuple(str(c) for c in cell) if cell else None)  # type: ignore[arg-type]
        if kind == FINISH_PLAN_RUN:
            plan_run_id, finished_at = data.get("plan_run_id"), data.get("finished_at")
            if not isinstance(plan_run_id, str) or not isinstance(finished_at, str):
                raise StoreError(f"{where}: plan_run_id and finished_at must be strings", path=where)
            return cls(FINISH_PLAN_RUN, plan_run_id=plan_run_id, finished_at=finished_at)
        raise StoreError(f"{where}: unknown spool entry kind {kind!r}", path=where)


@dataclass(frozen=True)
class Spool:
    """The spool folder of one store."""

    directory: Path
    store: str  # the store's location as printed (password masked)

    @classmethod
    def for_store(cls, identity: str, shown: str) -> Spool:
        """The spool of the store `identity` (a SQLite file's absolute path, or a PostgreSQL URL with
        its password masked: user, host, port, database and options, never the password)."""
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return cls(spool_root() / key, shown)

    def put(self, entry: PendingWrite) -> Path:
        """Write one entry atomically; returns its file. StoreError when the file cannot be written."""
        path = self.directory / f"{time.time_ns():020d}-{entry.key}.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(entry.to_json(self.store), sort_keys=True) + "\n")
        except OSError as exc:
            message = f"spool {self.directory}: cannot write: {exc.strerror}"
            raise StoreError(message, path=str(path)) from None
        except UsageError as exc:  # write_text_atomic's: here it is the spool, not the user's input
            raise StoreError(f"spool {exc.message}", path=str(path)) from None
        return path

    def files(self) -> list[Path]:
        """The entries' files, oldest first (none when the folder does not exist)."""
        try:
            names = self.directory.iterdir()
            return sorted(p for p in names if p.suffix == ".json" and not p.name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"spool {self.directory}: {exc.strerror}", path=str(self.directory)) from None

    def read(self, path: Path) -> PendingWrite | None:
        """The entry in `path`; None when another flush removed it meanwhile; StoreError when it is
        not a spool entry (not UTF-8 text, not JSON, not an entry's object) or cannot be read."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror}", path=str(path)) from None
        except UnicodeDecodeError as exc:
            raise StoreError(f"{path}: not UTF-8 text (byte {exc.start})", path=str(path)) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StoreError(f"{path}: not JSON: {exc}", path=str(path)) from None
        return PendingWrite.from_json(data, str(path))


def other_spools(exclude: Spool) -> dict[str, int]:
    """Spooled entries of other stores: {store location as printed: entries}, for `store flush`."""
    found: dict[str, int] = {}
    root = spool_root()
    if not root.is_dir():
        return found
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and p != exclude.directory):
        files = Spool(directory, "").files()
        if not files:
            continue
        try:
            shown = str(json.loads(files[0].read_text(encoding="utf-8")).get("store", directory.name))
        except (OSError, ValueError, AttributeError):
            shown = str(directory)
        found[shown] = found.get(shown, 0) + len(files)
    return found
