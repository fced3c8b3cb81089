"""`edgekit bench` and `edgekit demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.common import (
    DelegateOption,
    DelegateOptionOption,
    DeviceOption,
    FreshEngineOption,
    InventoryOption,
    JsonOption,
    ProviderOption,
    ProviderOptionOption,
    StoreOption,
    accelerator_request,
    store_from_option,
)
from edgekit.cli.output import ProgressPrinter, print_json, print_result, stderr
from edgekit.core.errors import EXIT_BUDGET, EXIT_OK
from edgekit.core.profiles import parse_budget_overrides
from edgekit.core.result import Result
from edgekit.measure.bench import DEFAULT_PROCESSES, ROUND_SECONDS, BenchOptions, run_bench
from edgekit.transport.board import resolve_board


def _benchmark(
    model: Path,
    device_name: str,
    inventory: Path | None,
    profile_name: str | None,
    budget_overrides: dict[str, float | None],
    options: BenchOptions,
    as_json: bool,
    store: str | None,
    save: bool,
    strict: bool,
) -> Result:
    board = resolve_board(
        device_name, inventory=inventory, profile=profile_name, budget_overrides=budget_overrides
    )
    # Opened first: a bad store (a wrong URL, a refused login) fails before the device is touched;
    # one that does not answer is not an error: the result is spooled (edgekit.store.spool).
    results_store = store_from_option(store) if save else None
    try:
        result = run_bench(model, board, options, on_event=ProgressPrinter(enabled=True))
        if results_store is not None:
            results_store.add_run(result)
    finally:
        if results_store is not None:
            results_store.close()
    if as_json:
        print_json(result)
    else:
        print_result(result)
    verdict = result.budget.verdict
    if verdict == "fail" or (strict and verdict == "unknown"):
        raise typer.Exit(EXIT_BUDGET)
    return result


def bench(
    model: Annotated[
        Path,
        typer.Argument(metavar="MODEL", help="An .onnx or .tflite model file, or an artifact directory."),
    ],
    device: DeviceOption = "local",
    inventory: InventoryOption = None,
    profile: Annotated[
        str | None, typer.Option(help="Profile name or .toml path (default: the device's).")
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed inferences, at least.")] = 100,
    warmup: Annotated[int, typer.Option(help="Untimed inferences before timing.")] = 10,
    min_seconds: Annotated[float, typer.Option(help="Keep timing at least this long.")] = 2.0,
    processes: Annotated[
        int,
        typer.Option(
            help="Fresh bench processes on the device, one after another, sharing --runs and "
            "--min-seconds (the machine's speed drifts between processes: each one is measured)."
        ),
    ] = DEFAULT_PROCESSES,
    rounds: Annotated[
        int | None,
        typer.Option(
            help=f"Timed rounds per process; the p50 interval is over round medians "
            f"(default: rounds of about {ROUND_SECONDS:g} s, at most 20)."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Intra-op threads (default: profile's; 0 = runtime's).")
    ] = None,
    shape: Annotated[
        list[str] | None, typer.Option(metavar="NAME=1x3x224x224", help="Input shape (repeatable).")
    ] = None,
    inputs: Annotated[Path | None, typer.Option(help=".npz with one array per model input.")] = None,
    provider: ProviderOption = None,
    provider_option: ProviderOptionOption = None,
    delegate: DelegateOption = None,
    delegate_option: DelegateOptionOption = None,
    fresh_engine: FreshEngineOption = False,
    budget: Annotated[
        list[str] | None,
        typer.Option(
            metavar="METRIC=VALUE",
            help="Override a budget: METRIC=VALUE, or METRIC=none to drop it (repeatable).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for generated inputs and bootstrap.")] = 0,
    lock_timeout: Annotated[
        float, typer.Option(help="Seconds to wait while another benchmark holds the device.")
    ] = 600.0,
    thermal_wait_timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the board to cool below max_start_temp_c (then: suspect)."),
    ] = 300.0,
    as_json: JsonOption = False,
    store: StoreOption = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not keep the result.")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            help="Exit 1 when a budgeted metric is unknown (drop budgets this device cannot judge: "
            "--budget METRIC=none)."
        ),
    ] = False,
) -> None:
    """Benchmark MODEL on a device and judge it against the device profile's budgets."""
    overrides = parse_budget_overrides(budget or [])
    accelerators = accelerator_request(provider, provider_option, delegate, delegate_option, fresh_engine)
    options = BenchOptions(
        runs=runs,
        warmup=warmup,
        min_seconds=min_seconds,
        threads=threads,
        shapes=tuple(shape or ()),
        inputs_file=inputs,
        seed=seed,
        lock_timeout_s=lock_timeout,
        thermal_wait_timeout_s=thermal_wait_timeout,
        processes=processes,
        rounds=rounds,
        accelerators=accelerators,
    )
    _benchmark(model, device, inventory, profile, overrides, options, as_json, store, not no_store, strict)
    raise typer.Exit(EXIT_OK)


def demo(
    as_json: JsonOption = False,
    store: StoreOption = None,
    min_seconds: Annotated[float, typer.Option(help="Keep timing at least this long.")] = 2.0,
) -> None:
    """Benchmark the bundled demo model (digits CNN) on `local` against the `local` profile."""
    from edgekit.data import demo_metadata, demo_model_path, demo_test_set_path

    meta = demo_metadata()
    if not as_json:
        accuracy = meta.get("test_accuracy")
        stderr.print(
            f"demo model: {demo_model_path().name} — CNN trained on scikit-learn digits"
            + (f", held-out accuracy {accuracy * 100:.1f}%" if isinstance(accuracy, float) else "")
        )
    options = BenchOptions(min_seconds=min_seconds, inputs_file=demo_test_set_path())
    _benchmark(demo_model_path(), "local", None, None, {}, options, as_json, store, True, False)
    raise typer.Exit(EXIT_OK)
