"""Fleet runs: models x recipes x devices, concurrent across devices, serial on each device.

A plan (TOML):

    [plan]
    name = "nightly"
    runs = 100
    min_seconds = 2.0
    inventory = "devices.toml"        # relative to the plan; default: $EDGEKIT_HOME/devices.toml
    max_parallel = 32                 # devices worked on at once (SSH sessions); default 32

    [devices]
    names = ["pi4-lab-1"]             # and/or
    tags = ["lab"]

    [[model]]
    path = "models/digits.onnx"       # relative to the plan
    recipes = ["as-is", "int8-static"]  # "as-is" benchmarks the file itself
    calib = "calib.npz"               # for recipes that need calibration data

Every device's outcome is kept: a device that fails never hides the others' results.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.core.config import Field, Section, number, read_toml, text, validate
from edgekit.core.errors import ConfigError, DeviceError, EdgekitError
from edgekit.core.profiles import load_profile
from edgekit.core.result import FleetCell, Result
from edgekit.measure.bench import BenchOptions, run_bench
from edgekit.store.open import open_store
from edgekit.transport.devices import Device, resolve_device
from edgekit.transport.inventory import load_inventory

AS_IS = "as-is"
DEFAULT_MAX_PARALLEL = 32  # SSH sessions at once: threads wait on the network, not on this CPU
_LIST_OF_STRINGS = Field((list,), "a list of strings", item_types=(str,))
PLAN_SCHEMA = Section(
    fields={
        "plan": Section(
            fields={
                "name": text("the plan name"),
                "runs": Field((int,), "an integer >= 1", check=lambda v: v >= 1),
                "min_seconds": number("seconds"),
                "inventory": text("inventory path"),
                "max_parallel": Field((int,), "an integer >= 1", check=lambda v: v >= 1),
            }
        ),
        "devices": Section(fields={"names": _LIST_OF_STRINGS, "tags": _LIST_OF_STRINGS}, required=True),
        "model": Field((list,), "an array of [[model]] tables", item_types=(dict,), required=True),
    }
)
MODEL_SCHEMA = Section(
    fields={
        "path": text("model path", required=True),
        "recipes": _LIST_OF_STRINGS,
        "calib": text("calib path"),
    }
)
EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Cell:
    model: Path
    recipe: str
    calib: Path | None


@dataclass
class Plan:
    name: str
    devices: list[Device]
    cells: list[Cell]
    options: BenchOptions
    max_parallel: int = DEFAULT_MAX_PARALLEL


@dataclass
class DeviceOutcome:
    device: str
    results: list[Result] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    failed: bool = False  # the device itself failed (unreachable, agent died, ...)


def load_plan(path: Path) -> Plan:
    data = read_toml(path)
    validate(data, PLAN_SCHEMA, path)
    base = path.parent
    settings = data.get("plan", {})
    inventory = base / settings["inventory"] if "inventory" in settings else None
    targets = load_inventory(inventory)
    wanted = set(data["devices"].get("names", []))
    tags = set(data["devices"].get("tags", []))
    unknown = sorted(wanted - set(targets) - {"local"})
    if unknown:
        raise ConfigError(f"{path}: devices.names: unknown device(s) {', '.join(unknown)}")
    names = sorted(wanted | {n for n, t in targets.items() if tags & set(t.tags)})
    if not names:
        raise ConfigError(f"{path}: [devices] selects no device")
    cells = []
    for index, entry in enumerate(data["model"]):
        validate(entry, MODEL_SCHEMA, path, f"model[{index}]")
        for recipe in entry.get("recipes", [AS_IS]):
            if recipe != AS_IS:
                parse_recipes([recipe])  # fail on a bad recipe before any device is touched
            cells.append(
                Cell(base / entry["path"], recipe, base / entry["calib"] if "calib" in entry else None)
            )
    options = BenchOptions(
        runs=int(settings.get("runs", 100)), min_seconds=float(settings.get("min_seconds", 2.0))
    )
    return Plan(
        settings.get("name", path.stem),
        [resolve_device(n, inventory) for n in names],
        cells,
        options,
        int(settings.get("max_parallel", DEFAULT_MAX_PARALLEL)),
    )


def _artifact(cell: Cell, device: Device, workdir: Path) -> Path:
    """The file to benchmark: the model itself, or its compressed form for this device's profile."""
    if cell.recipe == AS_IS:
        return cell.model
    out = workdir / f"{cell.model.stem}-{cell.recipe}-{device.profile}".replace(":", "_").replace(",", "_")
    if not out.exists():
        compress(
            cell.model,
            out,
            CompressOptions(
                steps=parse_recipes([cell.recipe]), profile=load_profile(device.profile), calib=cell.calib
            ),
        )
    return out


@dataclass
class FleetRun:
    plan_run_id: str
    resumed: bool
    skipped_cells: int  # finished by the interrupted run this one resumed
    outcomes: list[DeviceOutcome]


def cell_key(cell: Cell) -> str:
    return f"{cell.model.resolve()}|{cell.recipe}"


def run_plan(
    plan: Plan, store_location: str | Path, on_event: EventCallback | None = None, fresh: bool = False
) -> FleetRun:
    """Run every cell on every device. An interrupted run of the same plan is resumed (its finished
    cells are not redone) unless `fresh`; a run that ends, with or without failed devices, is finished."""
    emit = on_event or (lambda event: None)
    compress_lock = threading.Lock()  # compression is CPU-heavy host work: one at a time

    store = open_store(store_location)  # a bad store fails the run before any device is touched
    plan_run_id, resumed = store.start_plan_run(plan.name, fresh=fresh)
    done = store.done_cells(plan_run_id)

    def run_device(device: Device, workdir: Path) -> DeviceOutcome:
        outcome = DeviceOutcome(device.name)
        try:
            profile = load_profile(device.profile)
            emit({"device": device.name, "phase": "start", "cells": len(plan.cells)})
            for index, cell in enumerate(plan.cells):
                label = f"{cell.model.name} [{cell.recipe}]"
                if (device.name, cell_key(cell)) in done:
                    emit(
                        {
                            "device": device.name,
                            "phase": "cell",
                            "message": f"{label} (done before)",
                            "index": index,
                        }
                    )
                    continue
                emit({"device": device.name, "phase": "cell", "message": label, "index": index})
                try:
                    with compress_lock:
                        artifact = _artifact(cell, device, workdir)
                    result = run_bench(
                        artifact,
                        device,
                        profile,
                        plan.options,
                        on_event=lambda event: emit(
                            {"device": device.name, "phase": "bench", "bench": event}
                        ),
                    )
                    result.fleet = FleetCell(
                        plan=plan.name, plan_run_id=plan_run_id, model=str(cell.model), recipe=cell.recipe
                    )
                    store.add_run(result, plan_cell=(plan_run_id, device.name, cell_key(cell)))
                    outcome.results.append(result)
                except DeviceError as exc:
                    outcome.errors.append({"cell": label, "error": exc.message})
                    outcome.failed = True
                    emit({"device": device.name, "phase": "failed", "message": exc.message})
                    break  # the board is gone: its other cells would fail the same way
                except EdgekitError as exc:
                    outcome.errors.append({"cell": label, "error": exc.message})
        except EdgekitError as exc:
            outcome.errors.append({"cell": "*", "error": exc.message})
            outcome.failed = True
        emit(
            {
                "device": device.name,
                "phase": "done",
                "message": f"{len(outcome.results)} result(s), {len(outcome.errors)} error(s)",
                "failed": outcome.failed,
            }
        )
        return outcome

    try:
        with (
            tempfile.TemporaryDirectory(prefix="edgekit-fleet-") as scratch,
            ThreadPoolExecutor(max_workers=max(1, min(plan.max_parallel, len(plan.devices)))) as pool,
        ):
            futures = [pool.submit(run_device, device, Path(scratch)) for device in plan.devices]
            outcomes = [future.result() for future in futures]
        store.finish_plan_run(plan_run_id)
        skipped = sum(
            1 for device in plan.devices for cell in plan.cells if (device.name, cell_key(cell)) in done
        )
        return FleetRun(plan_run_id, resumed, skipped, outcomes)
    finally:
        store.close()
