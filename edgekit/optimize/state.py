"""The search's memory: every candidate's outcome per device, saved after each one, so an
interrupted search resumes where it stopped and a finished one is not redone."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.atomic import write_text_atomic
from edgekit.core.errors import UsageError

STATE_NAME = "search.json"
STATE_SCHEMA = 1

# statuses
BASELINE = "baseline"  # the float model itself, the reference
ACCEPTED = "accepted"  # within the accuracy tolerance and not slower than float on the device
REJECTED = "rejected"  # measured, and out: accuracy, speed or its provider ran nothing (the reason says)
FAILED = "failed"  # could not be made or run (the reason says why); not retried on resume
FINAL = (BASELINE, ACCEPTED, REJECTED, FAILED)


@dataclass
class Outcome:
    name: str  # the recipe chain, or "float"
    status: str
    reason: str = ""
    artifact: str | None = None
    size_bytes: int | None = None
    latency_p50_ms: float | None = None
    block_medians: list[float] | None = None
    accuracy: float | None = None
    accuracy_drop_points: float | None = None
    top1_agreement: float | None = None
    energy_mj: float | None = None
    speedup: float | None = None
    budget_verdict: str | None = None
    run_id: str | None = None
    seconds: float = 0.0
    provider: str | None = None  # the onnxruntime provider asked for (optimize --provider), else None
    # Fraction 0-1 of the graph's nodes a provider other than the CPU ran (the bench result's
    # runtime.placement.accelerated_fraction); None: no placement recorded
    accelerated_fraction: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeviceSearch:
    device: str
    profile: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # in the order they were tried
    confirmation: dict[str, Any] | None = None  # the pick vs float, re-measured side by side

    def done(self, name: str) -> bool:
        return name in self.outcomes and self.outcomes[name].status in FINAL


@dataclass
class SearchState:
    key: dict[str, Any]
    devices: dict[str, DeviceSearch] = field(default_factory=dict)

    def device(self, name: str, profile: str) -> DeviceSearch:
        return self.devices.setdefault(name, DeviceSearch(name, profile))

    def save(self, out_dir: Path) -> None:
        data = {
            "schema": STATE_SCHEMA,
            "key": self.key,
            "devices": {
                name: {
                    "device": search.device,
                    "profile": search.profile,
                    "outcomes": [o.to_dict() for o in search.outcomes.values()],
                    "confirmation": search.confirmation,
                }
                for name, search in self.devices.items()
            },
        }
        write_text_atomic(out_dir / STATE_NAME, json.dumps(data, indent=2) + "\n")


def load_state(out_dir: Path, key: dict[str, Any], fresh: bool) -> tuple[SearchState, bool]:
    """(state, resumed): the saved search in out_dir when its settings match, else a new one.
    A saved search with other settings is refused unless `fresh` starts over."""
    path = out_dir / STATE_NAME
    if fresh or not path.exists():
        return SearchState(key), False
    try:
        data = json.loads(path.read_text())
        if data.get("schema") != STATE_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}")
        saved_key = data["key"]
        devices = {
            name: DeviceSearch(
                entry["device"],
                entry["profile"],
                {o["name"]: Outcome(**o) for o in entry["outcomes"]},
                entry.get("confirmation"),
            )
            for name, entry in data["devices"].items()
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable search state ({exc}); use --fresh to start over") from None
    if saved_key != key:
        changed = sorted(k for k in {*key, *saved_key} if key.get(k) != saved_key.get(k))
        raise UsageError(
            f"{out_dir} holds a search with other settings ({', '.join(changed)} differ); "
            "use another -o or --fresh to start over"
        )
    return SearchState(key, devices), True
