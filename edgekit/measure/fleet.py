"""Fleet runs: models x recipes x devices, concurrent across devices, serial on each device.

A plan (TOML):

    [plan]
    name = "nightly"
    runs = 100
    min_seconds = 2.0
    processes = 2                     # fresh bench processes per benchmark (default 2)
    rounds = 4                        # timed rounds per process; default: rounds of about 0.25 s
    inventory = "devices.toml"        # relative to the plan; default: $EDGEKIT_HOME/devices.toml
    max_parallel = 32                 # devices worked on at once (SSH sessions); default 32

    [devices]
    names = ["pi4-lab-1"]             # and/or
    tags = ["lab"]

    [[model]]
    path = "models/digits.onnx"       # relative to the plan
    recipes = ["as-is", "int8-static"]  # "as-is" benchmarks the file itself
    calib = "calib.npz"               # for recipes that need calibration data

Accelerators (docs/accelerators.md), the same settings as `edgekit bench`'s flags, as keys of
[plan] (every cell's default) and of a [[model]] table (a key given there replaces the plan's):

    providers = ["cuda", "cpu"]       # --provider, in order (chosen_by "explicit")
    [plan.provider_options.cuda]      # --provider-option cuda.KEY=VALUE
    device_id = "0"
    delegate = "edgetpu"              # --delegate (TFLite cells)
    delegate_options = { device = "usb:0" }   # an external delegate's options only
    fresh_engine = true               # --fresh-engine

Providers apply to the ONNX cells, the delegate to the TFLite cells (a recipe may turn one into
the other). Without providers a device uses its profile's [accelerators] (chosen_by "profile").
A provider or delegate asked for that a device lacks fails that cell (exit 3), not the device.

Every device's outcome is kept: a device that fails never hides the others' results.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.core.accelerators import AcceleratorRequest, request_from_tables
from edgekit.core.artifacts import load_artifact
from edgekit.core.config import ConfigModel, integer, json_schema, number, read_toml, text, validate_model
from edgekit.core.errors import (
    CELL_ERROR_TYPES,
    AgentError,
    CancelledError,
    ConfigError,
    DeviceError,
    EdgekitError,
    UsageError,
)
from edgekit.core.profiles import ProfileAccelerators
from edgekit.core.result import FleetCell, Result
from edgekit.measure.bench import DEFAULT_PROCESSES, BenchOptions, run_bench
from edgekit.store.base import ResultsStore
from edgekit.store.open import open_store
from edgekit.transport.board import Board, board_for
from edgekit.transport.devices import Device, resolve_device
from edgekit.transport.inventory import load_inventory

AS_IS = "as-is"
DEFAULT_MAX_PARALLEL = 32  # SSH sessions at once: threads wait on the network, not on this CPU
# Ctrl-C on a terminal reaches the whole process group: a local agent (or the ssh client) dies of the
# same SIGINT that the main thread turns into run.cancel. A worker that sees its agent die waits this
# long (seconds) for the cancel before it calls the device failed.
INTERRUPT_GRACE_S = 1.0


ACCELERATOR_KEYS = ("providers", "provider_options", "delegate", "delegate_options", "fresh_engine")


class PlanAccelerators(ProfileAccelerators):
    """The accelerator keys of [plan] and [[model]]: bench's --provider, --provider-option,
    --delegate, --delegate-option and --fresh-engine, checked as the profile's [accelerators]."""

    fresh_engine: bool | None = Field(
        default=None,
        description="true or false: rebuild a cached TensorRT engine (--fresh-engine); absent = false",
    )

    @model_validator(mode="after")
    def _delegate_takes_options(self) -> PlanAccelerators:
        """A [[model]] table's delegate_options may go with [plan]'s delegate: the merged settings
        of each [[model]] are checked (request_from_tables), not each table alone."""
        return self


class PlanSettings(PlanAccelerators):
    """[plan]: name, measurement effort, inventory, concurrency and the accelerators of every cell."""

    name: str | None = text("the plan name; absent = the file name without .toml")
    runs: int = integer("timed runs per benchmark", minimum=1, default=100)
    min_seconds: float = number("seconds, the least timing time per benchmark", default=2.0)
    processes: int = integer(
        "fresh bench processes per benchmark, sharing runs and min_seconds",
        minimum=1,
        default=DEFAULT_PROCESSES,
    )
    rounds: int | None = integer("timed rounds per process; absent = rounds of about 0.25 s", minimum=1)
    inventory: str | None = text("inventory path, relative to the plan; absent = $EDGEKIT_HOME/devices.toml")
    max_parallel: int = integer(
        "devices worked on at once (SSH sessions)", minimum=1, default=DEFAULT_MAX_PARALLEL
    )


class PlanDevices(ConfigModel):
    """[devices]: the devices by name and/or by inventory tag (a union of both)."""

    names: list[str] = Field(default_factory=list, description="a list of strings (device names)")
    tags: list[str] = Field(default_factory=list, description="a list of strings (inventory tags)")


class PlanModel(PlanAccelerators):
    """One [[model]] table: a model file, the recipes to benchmark it with, and accelerator keys
    that replace the plan's for its cells."""

    @field_validator("provider_options")
    @classmethod
    def _options_of_listed(cls, options: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return options  # may name the plan's providers: checked on the merged settings (load_plan)

    path: str = text("model path, relative to the plan", default=...)
    recipes: list[str] = Field(
        default_factory=lambda: [AS_IS],
        json_schema_extra={"default": [AS_IS]},
        description=f"a list of strings (compression recipes; {AS_IS!r} = the file itself)",
    )
    calib: str | None = text("calibration data path, relative to the plan")


class PlanFile(ConfigModel):
    """A fleet plan file: models x recipes x devices."""

    plan: PlanSettings = Field(default_factory=PlanSettings)
    devices: PlanDevices
    model: list[PlanModel] = Field(description="an array of [[model]] tables")


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of a fleet plan TOML file (docs/schema/fleet-plan.schema.json)."""
    return json_schema(
        PlanFile,
        title="edgekit fleet plan",
        description="Models x recipes x devices for `edgekit fleet run PLAN.toml`.",
    )


EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Cell:
    model: Path
    recipe: str
    calib: Path | None
    # providers/delegate asked for (both kinds; the one that fits the artifact's format is applied)
    accelerators: AcceleratorRequest = field(default_factory=AcceleratorRequest)

    def label(self) -> str:
        """`model.onnx [recipe]`, plus the providers/delegate asked for."""
        asked = ",".join(self.accelerators.providers)
        if self.accelerators.delegate is not None:
            asked += ("; " if asked else "") + f"delegate {self.accelerators.delegate}"
        return f"{self.model.name} [{self.recipe}]" + (f" ({asked})" if asked else "")


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
    """Read and check a plan, its inventory, devices and recipes before any device is touched.

    Raises ConfigError (one line naming `path` and the key) for a bad file, an unknown device, a
    missing model or calibration file, or a recipe without the calibration data it needs;
    UsageError for an unknown recipe.
    """
    data = validate_model(PlanFile, read_toml(path), path)
    base = path.parent
    settings = data.plan
    inventory = base / settings.inventory if settings.inventory is not None else None
    targets = load_inventory(inventory)
    wanted = set(data.devices.names)
    tags = set(data.devices.tags)
    unknown = sorted(wanted - set(targets) - {"local"})
    if unknown:
        raise ConfigError(f"{path}: devices.names: unknown device(s) {', '.join(unknown)}")
    names = sorted(wanted | {n for n, t in targets.items() if tags & set(t.tags)})
    if not names:
        raise ConfigError(f"{path}: [devices] selects no device")
    cells = []
    for index, entry in enumerate(data.model):
        accelerators = _cell_accelerators(path, index, settings, entry)
        cells += [replace(cell, accelerators=accelerators) for cell in _model_cells(path, index, entry)]
    options = BenchOptions(
        runs=settings.runs,
        min_seconds=settings.min_seconds,
        processes=settings.processes,
        rounds=settings.rounds,
    )
    return Plan(
        settings.name if settings.name is not None else path.stem,
        [resolve_device(n, inventory) for n in names],
        cells,
        options,
        settings.max_parallel,
    )


def _cell_accelerators(
    path: Path, index: int, settings: PlanSettings, entry: PlanModel
) -> AcceleratorRequest:
    """The accelerator request of one [[model]] table's cells: each key the table gives replaces
    the plan's; the plan's provider_options keep only the providers in effect. Raises ConfigError
    (exit 2) naming `path` and the key when the settings do not make a valid request."""
    merged = {
        key: getattr(entry if key in entry.model_fields_set else settings, key) for key in ACCELERATOR_KEYS
    }
    if "provider_options" not in entry.model_fields_set:
        merged["provider_options"] = {
            name: values for name, values in merged["provider_options"].items() if name in merged["providers"]
        }
    unlisted = sorted(set(merged["provider_options"]) - set(merged["providers"]))
    if unlisted:
        key = f"model[{index}].provider_options"
        shown = ", ".join(merged["providers"]) or "none"
        raise ConfigError(
            f"{path}: {key}: options for {unlisted[0]!r}, which is not in providers ({shown})",
            path=str(path),
            key=key,
        )
    try:
        return request_from_tables(
            merged["providers"],
            merged["provider_options"],
            merged["delegate"],
            merged["delegate_options"],
            bool(merged["fresh_engine"]),
        )
    except UsageError as exc:
        given = [key for key in ACCELERATOR_KEYS if key in entry.model_fields_set]
        key = f"model[{index}].{given[0]}" if given else f"plan.{ACCELERATOR_KEYS[0]}"
        raise ConfigError(f"{path}: {key}: {exc.message}", path=str(path), key=key) from None


def _model_cells(path: Path, index: int, entry: PlanModel) -> list[Cell]:
    """One [[model]] table's cells, checked before any device is touched: the model file and the
    calibration data exist, every recipe parses and has the calibration data it needs.

    Raises ConfigError naming `path` and the key (`model[0].path`), UsageError for an unknown recipe.
    """
    where = f"{path}: model[{index}]"
    model = path.parent / entry.path
    if not model.is_file():
        raise ConfigError(
            f"{where}.path: {entry.path}: no such file", path=str(path), key=f"model[{index}].path"
        )
    calib = path.parent / entry.calib if entry.calib is not None else None
    if calib is not None and not calib.exists():
        raise ConfigError(
            f"{where}.calib: {entry.calib}: no such file or folder",
            path=str(path),
            key=f"model[{index}].calib",
        )
    for recipe in entry.recipes:
        if recipe == AS_IS:
            continue
        for step in parse_recipes([recipe]):
            if calib is None and step.spec.needs_calibration(step.params):
                raise ConfigError(
                    f'{where}.recipes: {recipe!r} needs calibration data: add calib = "CALIB.npz" '
                    "(or a folder) to this [[model]] table",
                    path=str(path),
                    key=f"model[{index}].calib",
                )
    return [Cell(model, recipe, calib) for recipe in entry.recipes]


def _artifact(cell: Cell, board: Board, workdir: Path) -> Path:
    """The file to benchmark: the model itself, or its compressed form for this board's profile
    (made once per profile in `workdir` and reused by every board with that profile)."""
    if cell.recipe == AS_IS:
        return cell.model
    profile = board.profile
    out = workdir / f"{cell.model.stem}-{cell.recipe}-{profile.name}".replace(":", "_").replace(",", "_")
    if not out.exists():
        compress(
            cell.model,
            out,
            CompressOptions(steps=parse_recipes([cell.recipe]), profile=profile, calib=cell.calib),
        )
    return out


@dataclass
class FleetRun:
    plan_run_id: str
    resumed: bool
    skipped_cells: int  # finished by the interrupted run this one resumed
    outcomes: list[DeviceOutcome]


def cell_key(cell: Cell) -> str:
    """The cell's identity in the store (a resumed run skips the keys done): model and recipe, and
    the accelerators asked for when there are any (plans without them keep their keys)."""
    key = f"{cell.model.resolve()}|{cell.recipe}"
    asked = cell.accelerators
    if asked != AcceleratorRequest():
        key += f"|{','.join(asked.providers)}|{','.join(asked.provider_options)}|{asked.delegate or ''}"
        key += f"|{','.join(asked.delegate_options)}|{int(asked.fresh_engine)}"
    return key


@dataclass
class _PlanRun:
    """What every device's worker of one plan run shares."""

    plan: Plan
    store: ResultsStore
    plan_run_id: str
    done: set[tuple[str, str]]  # (device, cell_key) finished by the run this one resumes
    emit: EventCallback
    workdir: Path  # compressed artifacts, shared by the devices of a profile
    # compression is CPU-heavy host work: one at a time
    compress_lock: threading.Lock = field(default_factory=threading.Lock)
    # set by the main thread when it is interrupted: every device's worker stops (its bench child too)
    cancel: threading.Event = field(default_factory=threading.Event)

    def is_done(self, device: str, cell: Cell) -> bool:
        return (device, cell_key(cell)) in self.done

    def interrupted(self) -> bool:
        """Whether the run is being interrupted, waiting up to INTERRUPT_GRACE_S for the main thread
        to say so: called when a device failed, which the interrupt's own SIGINT may have caused."""
        return self.cancel.wait(INTERRUPT_GRACE_S)


def _bench_cell(run: _PlanRun, board: Board, cell: Cell) -> Result:
    """Compress (if the recipe asks) and benchmark one cell on one board, and store the result with
    the cell marked done. Raises DeviceError when the board fails, EdgekitError for the cell."""
    with run.compress_lock:
        artifact = _artifact(cell, board, run.workdir)
    accelerators = cell.accelerators.for_format(load_artifact(artifact).format)
    result = run_bench(
        artifact,
        board,
        replace(run.plan.options, accelerators=accelerators),
        on_event=lambda event: run.emit({"device": board.name, "phase": "bench", "bench": event}),
        cancel=run.cancel,
    )
    result.fleet = FleetCell(
        plan=run.plan.name, plan_run_id=run.plan_run_id, model=str(cell.model), recipe=cell.recipe
    )
    run.store.add_run(result, plan_cell=(run.plan_run_id, board.name, cell_key(cell)))
    return result


def _run_cells(run: _PlanRun, board: Board, outcome: DeviceOutcome) -> None:
    """Every cell of the plan on one board, in order: a failing cell is recorded and the next one
    runs; a failing board (DeviceError) ends its cells."""
    for index, cell in enumerate(run.plan.cells):
        if run.cancel.is_set():
            return
        label = cell.label()
        if run.is_done(board.name, cell):
            message = f"{label} (done before)"
            run.emit({"device": board.name, "phase": "cell", "message": message, "index": index})
            continue
        run.emit({"device": board.name, "phase": "cell", "message": label, "index": index})
        try:
            outcome.results.append(_bench_cell(run, board, cell))
        except CancelledError:
            return  # the run was interrupted: this cell stays not done, for the resumed run
        except DeviceError as exc:
            if isinstance(exc, AgentError) and exc.error_type in CELL_ERROR_TYPES:
                # the board is fine and lacks the provider/delegate this cell asked for, or refused
                # this cell's request: the cell fails (exit 3), the board's other cells run
                outcome.errors.append({"cell": label, "error": exc.message, "exit": "device"})
                continue
            if run.interrupted():
                return  # the interrupt killed the agent: not a failure, the cell stays not done
            outcome.errors.append({"cell": label, "error": exc.message})
            outcome.failed = True
            run.emit({"device": board.name, "phase": "failed", "message": exc.message})
            return  # the board is gone: its other cells would fail the same way
        except EdgekitError as exc:
            outcome.errors.append({"cell": label, "error": exc.message})


def _run_device(run: _PlanRun, device: Device) -> DeviceOutcome:
    """One device's outcome; never raises an EdgekitError (a board whose profile cannot be loaded
    is a failed device, its error under cell "*")."""
    outcome = DeviceOutcome(device.name)
    try:
        board = board_for(device)
        run.emit({"device": device.name, "phase": "start", "cells": len(run.plan.cells)})
        _run_cells(run, board, outcome)
    except EdgekitError as exc:
        cut = isinstance(exc, CancelledError) or (isinstance(exc, DeviceError) and run.interrupted())
        if not cut:
            outcome.errors.append({"cell": "*", "error": exc.message})
            outcome.failed = True
    if run.cancel.is_set():
        return outcome  # interrupted: the run reports only that (exit 130), no per-device summary
    run.emit(
        {
            "device": device.name,
            "phase": "done",
            "message": f"{len(outcome.results)} result(s), {len(outcome.errors)} error(s)",
            "failed": outcome.failed,
        }
    )
    return outcome


def _run_devices(run: _PlanRun) -> list[DeviceOutcome]:
    """Every device at once (at most plan.max_parallel threads), outcomes in plan order.
    Interrupted (Ctrl-C reaches the main thread only), the workers are cancelled and waited for:
    their bench children are stopped, finished cells stay stored, the run stays resumable."""
    devices = run.plan.devices
    with ThreadPoolExecutor(max_workers=max(1, min(run.plan.max_parallel, len(devices)))) as pool:
        futures = [pool.submit(_run_device, run, device) for device in devices]
        try:
            return [future.result() for future in futures]
        except BaseException:
            run.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _skipped_cells(plan: Plan, done: set[tuple[str, str]]) -> int:
    return sum(1 for device in plan.devices for cell in plan.cells if (device.name, cell_key(cell)) in done)


def run_plan(
    plan: Plan, store_location: str | Path, on_event: EventCallback | None = None, fresh: bool = False
) -> FleetRun:
    """Run every cell on every device. An interrupted run of the same plan is resumed (its finished
    cells are not redone) unless `fresh`; a run that ends, with or without failed devices, is finished.
    Raises StoreError (before any device is touched) when the store cannot be opened or does not
    answer at the start; a result it does not take later is spooled (edgekit.store.spool)."""
    # A bad store fails the run before any device is touched.
    store = open_store(store_location, spool=True)
    try:
        plan_run_id, resumed = store.start_plan_run(plan.name, fresh=fresh)
        done = store.done_cells(plan_run_id)
        with tempfile.TemporaryDirectory(prefix="edgekit-fleet-") as scratch:
            run = _PlanRun(plan, store, plan_run_id, done, on_event or (lambda event: None), Path(scratch))
            outcomes = _run_devices(run)
        store.finish_plan_run(plan_run_id)
        return FleetRun(plan_run_id, resumed, _skipped_cells(plan, done), outcomes)
    finally:
        store.close()
