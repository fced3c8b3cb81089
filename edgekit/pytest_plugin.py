"""pytest plugin (entry point `pytest11`): hardware-in-the-loop tests against device budgets.

    pytest --edge-inventory devices.toml [--edge-devices pi4-1,pi5-2 | --edge-tags lab]
    pytest --edge-devices local                 # no hardware: this machine

    @pytest.mark.edge
    def test_digits_fits(edge_device, edge_bench):
        result = edge_bench("models/digits.onnx", runs=200)
        assert_within_budget(result)

`edge_device` is parametrised over the selected boards (test ids are device names), each with its
profile and budgets; `edge_bench(model_or_artifact, budget_overrides=None, **BenchOptions fields)`
(an override of None drops that budget, e.g. energy where the board has no power sensor)
benchmarks on it and returns the result JSON, recording its metrics as JUnit properties;
`assert_within_budget(result)` fails with a per-metric table; `edge_compare(baseline, candidate)`
runs an interleaved A/B comparison on it (as `edgekit compare --device`) and
`assert_no_regression(report)` fails on its regression. Tests marked `edge` are skipped with
a reason when no device is selected. Boards are locked by their agent (one benchmark at a time per
board), which also holds across pytest-xdist workers; `local` uses one lock per machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from edgekit.core.errors import EdgekitError
from edgekit.core.profiles import MINIMUM_METRICS

if TYPE_CHECKING:  # loaded by every pytest run where edgekit is installed: import the rest lazily
    from edgekit.core.profiles import Budget, DeviceProfile
    from edgekit.measure.bench import BenchOptions
    from edgekit.transport.board import Board
    from edgekit.transport.devices import Device

JUNIT_METRICS = (
    ("latency_p50_ms", ("latency_ms", "p50")),
    ("latency_p90_ms", ("latency_ms", "p90")),
    ("latency_p99_ms", ("latency_ms", "p99")),
    ("peak_rss_bytes", ("memory", "peak_rss_bytes")),
    ("model_rss_delta_bytes", ("memory", "model_rss_delta_bytes")),
    ("artifact_size_bytes", ("artifact", "size_bytes")),
    ("verdict", ("budget", "verdict")),
)


@dataclass(frozen=True)
class EdgeDevice:
    """The board under test: `name` (the test id), `device`, `profile` and its `budget`."""

    board: Board

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def device(self) -> Device:
        return self.board.device

    @property
    def profile(self) -> DeviceProfile:
        return self.board.profile

    @property
    def budget(self) -> Budget:
        return self.board.budget


class BudgetExceeded(AssertionError):
    """A result over its device's budget; the message is the per-metric table."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgekit", "edgekit hardware-in-the-loop")
    group.addoption("--edge-inventory", metavar="TOML", help="inventory of boards (edgekit devices.toml)")
    group.addoption("--edge-devices", metavar="NAMES", help="comma-separated device names ('local' included)")
    group.addoption("--edge-tags", metavar="TAGS", help="comma-separated tags: boards with any of them")
    group.addoption(
        "--edge-store",
        metavar="STORE",
        help="also store every result in this results store (SQLite file or postgresql:// URL)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "edge: benchmarks on the boards selected with --edge-* options")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def selected_devices(config: pytest.Config) -> list[str]:
    """Device names from --edge-devices and --edge-tags (tags need --edge-inventory)."""
    from edgekit.transport.inventory import load_inventory

    inventory = config.getoption("--edge-inventory")
    names = _split(config.getoption("--edge-devices"))
    tags = set(_split(config.getoption("--edge-tags")))
    if inventory is None:
        if tags:
            raise pytest.UsageError("--edge-tags needs --edge-inventory")
        return names
    try:
        targets = load_inventory(Path(inventory))
    except EdgekitError as exc:
        raise pytest.UsageError(f"--edge-inventory: {exc.message}") from None
    unknown = sorted(set(names) - set(targets) - {"local"})
    if unknown:
        raise pytest.UsageError(f"--edge-devices: not in {inventory}: {', '.join(unknown)}")
    if not names and not tags:
        return sorted(targets)
    return sorted(set(names) | {n for n, t in targets.items() if tags & set(t.tags)})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edge_device" in metafunc.fixturenames:
        names = selected_devices(metafunc.config)
        metafunc.parametrize("edge_device", names or ["<no device>"], indirect=True, ids=names or None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if selected_devices(config):
        return
    skip = pytest.mark.skip(reason="no edge device selected (--edge-inventory / --edge-devices local)")
    for item in items:
        if "edge" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def edge_device(request: pytest.FixtureRequest) -> EdgeDevice:
    from edgekit.transport.board import resolve_board

    name = request.param
    inventory = request.config.getoption("--edge-inventory")
    try:
        return EdgeDevice(resolve_board(name, inventory=Path(inventory) if inventory else None))
    except EdgekitError as exc:
        pytest.fail(f"edge device {name!r}: {exc.message}", pytrace=False)


EdgeBench = Callable[..., dict[str, Any]]
# Fixture keywords for accelerators, as on the command line (edgekit.core.accelerators):
# providers=["tensorrt", "cuda"], provider_options=["trt_fp16_enable=True"] or, as in a profile's
# table, {"tensorrt": {"trt_fp16_enable": "True"}} ({"key": "value"} applies to the first provider),
# delegate="edgetpu", delegate_options=["device=usb:0"] or {"device": "usb:0"} (an external
# delegate's options; a string is one item).
ACCELERATOR_KWARGS = ("providers", "provider_options", "delegate", "delegate_options", "fresh_engine")


def option_items(value: Any) -> tuple[str, ...]:
    """provider_options / delegate_options given to a fixture -> the command line's items:
    "KEY=VALUE" (a string, a list of them, or {key: value}) and "PROVIDER.KEY=VALUE" for
    {provider: {key: value}} (a profile's table)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):
        items: list[str] = []
        for key, inner in value.items():
            if isinstance(inner, dict):
                items += [f"{key}.{k}={v}" for k, v in inner.items()]
            else:
                items.append(f"{key}={inner}")
        return tuple(items)
    return tuple(value)


def fixture_options(fixture: str, options: dict[str, Any], known_what: str) -> BenchOptions:
    """A fixture's keyword options as BenchOptions: its fields plus the ACCELERATOR_KWARGS.
    Raises TypeError for another keyword (a typo in a test is the test's bug)."""
    from edgekit.core.accelerators import AcceleratorRequest
    from edgekit.measure.bench import BenchOptions

    options = dict(options)
    accelerators: dict[str, Any] = {}
    for key in ACCELERATOR_KWARGS:
        if key in options:
            value = options.pop(key)
            many = key not in ("delegate", "fresh_engine") and value is not None
            accelerators[key] = option_items(value) if many else value
    if accelerators:
        options["accelerators"] = AcceleratorRequest(**accelerators)
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(BenchOptions)})
    if unknown:
        raise TypeError(f"{fixture}: unknown option(s) {', '.join(unknown)} ({known_what})")
    return BenchOptions(**options)


@pytest.fixture
def edge_bench(
    edge_device: EdgeDevice, record_property: Callable[[str, object], None], request: pytest.FixtureRequest
) -> EdgeBench:
    from edgekit.measure.bench import run_bench
    from edgekit.store.open import open_store

    store_path = request.config.getoption("--edge-store")

    def bench(
        model: str | Path, budget_overrides: dict[str, float | None] | None = None, **options: Any
    ) -> dict[str, Any]:
        bench_options = fixture_options("edge_bench", options, "BenchOptions fields, budget_overrides")
        board = edge_device.board.with_budget_overrides(budget_overrides or {})
        try:
            result = run_bench(Path(model), board, bench_options)
        except EdgekitError as exc:
            pytest.fail(f"{edge_device.name}: {exc.message}", pytrace=False)
        record_metrics(result.to_dict(), record_property)
        if store_path:
            store = open_store(store_path, spool=True)
            try:
                store.add_run(result)
            finally:
                store.close()
        return result.to_dict()  # the fixture's contract: the result JSON object, as bench --json

    return bench


EdgeCompare = Callable[..., dict[str, Any]]


@pytest.fixture
def edge_compare(
    edge_device: EdgeDevice, record_property: Callable[[str, object], None], request: pytest.FixtureRequest
) -> EdgeCompare:
    """`edge_compare(baseline, candidate, rounds=20, round_seconds=0.2, threshold=5.0,
    **BenchOptions fields)`: an interleaved A/B run of two models (files or artifact directories)
    on the device, as `edgekit compare BASELINE CANDIDATE --device` (edgekit.measure.ab); returns
    its JSON (`{"ab": ..., "comparison": ...}`, the same as `--json`), records the latency change
    and verdict as JUnit properties and stores both runs with --edge-store. `threshold` is percent.
    Pair it with `assert_no_regression`."""
    from edgekit.judge.compare import parse_thresholds
    from edgekit.measure.ab import AbOptions, ab_compare
    from edgekit.store.open import open_store

    store_path = request.config.getoption("--edge-store")

    def compare(
        baseline: str | Path,
        candidate: str | Path,
        rounds: int = 20,
        round_seconds: float = 0.2,
        threshold: float = 5.0,
        **options: Any,
    ) -> dict[str, Any]:
        bench_options = fixture_options("edge_compare", options, "BenchOptions fields")
        try:
            ab = ab_compare(
                Path(baseline),
                Path(candidate),
                edge_device.board,
                bench_options,
                AbOptions(rounds=rounds, round_seconds=round_seconds),
                parse_thresholds([str(threshold)]),
            )
        except EdgekitError as exc:
            pytest.fail(f"{edge_device.name}: {exc.message}", pytrace=False)
        if store_path:
            store = open_store(store_path, spool=True)
            try:
                store.add_run(ab.measurement.baseline)
                store.add_run(ab.measurement.candidate)
            finally:
                store.close()
        report = ab.to_dict()
        latency = next(m for m in report["comparison"]["metrics"] if m["metric"] == "latency_p50_ms") if (
            report["comparison"]["metrics"]) else {}  # fmt: skip
        record_property("edge_ab_id", ab.measurement.ab_id)
        record_property("edge_ab_verdict", report["comparison"]["verdict"])
        if latency.get("change") is not None:
            record_property("edge_ab_latency_change", latency["change"])
        return report

    return compare


class Regression(AssertionError):
    """An A/B comparison that found a regression (or could not compare); the message says which."""


def assert_no_regression(report: dict[str, Any]) -> None:
    """Fail when an `edge_compare` report's verdict is "regression" or "not-comparable"."""
    comparison = report["comparison"]
    verdict = comparison["verdict"]
    if verdict == "not-comparable":
        raise Regression("not comparable: " + "; ".join(comparison["not_comparable_reasons"]))
    if verdict == "regression":
        lines = [
            f"{m['metric']}: {m['verdict']} ({m['reason']})"
            for m in comparison["metrics"]
            if m["verdict"] == "regression"
        ]
        raise Regression(f"A/B {report['ab']['ab_id'][:12]}: regression\n" + "\n".join(lines))


def record_metrics(result: dict[str, Any], record_property: Callable[[str, object], None]) -> None:
    """The result's key metrics as JUnit <property> elements (CI systems show them per test)."""
    record_property("edge_device", result["device"]["name"])
    record_property("edge_run_id", result.get("run_id", ""))
    for name, (section, key) in JUNIT_METRICS:
        value = (result.get(section) or {}).get(key)
        if value is not None:
            record_property(f"edge_{name}", value)


def budget_table(result: dict[str, Any]) -> str:
    """Plain-text per-metric table of the budget checks, failures marked."""
    rows = [("metric", "value", "budget", "verdict")]
    for check in result["budget"]["checks"]:
        value = check.get("value")
        rows.append(
            (
                str(check["metric"]),
                "—" if value is None else f"{value:.4g}",
                f"{'>=' if check['metric'] in MINIMUM_METRICS else '<='} {check['limit']:g}",
                str(check["verdict"]).upper() + (f" ({check['reason']})" if check.get("reason") else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def assert_within_budget(result: dict[str, Any], allow_unknown: bool = True) -> None:
    """Fail unless every budgeted metric passed (unknown ones too, with allow_unknown=False)."""
    verdict = result["budget"]["verdict"]
    if verdict == "fail" or (verdict == "unknown" and not allow_unknown):
        device = result["device"]["name"]
        raise BudgetExceeded(
            f"{result['model']['name']} on {device} is {verdict.upper()} against profile "
            f"{result['budget'].get('profile')}:\n{budget_table(result)}"
        )
