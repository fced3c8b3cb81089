"""Options and helpers shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand

from edgekit.compress.fidelity import OUTPUT_KINDS
from edgekit.core.accelerators import AcceleratorRequest
from edgekit.core.errors import StoreError, UsageError
from edgekit.core.resources import default_store_path
from edgekit.store.base import ResultsStore
from edgekit.store.location import checked_location
from edgekit.store.open import open_store


class UsageCommand(TyperCommand):
    """A command whose usage line names its arguments as their metavars (`MODEL`, `PLAN`): typer
    (0.29) writes a required argument as `{model}`, a form no shell or man page uses. Give every
    command with arguments `cls=UsageCommand` and every typer.Argument a metavar."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


STORE_ENV = "EDGEKIT_STORE"  # a team points every command at its PostgreSQL store once
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        show_envvar=False,
        help="Results store: a SQLite file or a postgresql://user@host:port/db URL. "
        f"Default: ${STORE_ENV}, else $EDGEKIT_HOME/results.sqlite.",
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", "-d", help="Device name (see 'edgekit devices list').")
]


def store_location(store: str | None) -> str | Path:
    """The store --store (or $EDGEKIT_STORE) names, else the default; checked as open_store checks
    it (an empty --store is a usage error, not the default)."""
    return default_store_path() if store is None else checked_location(store)


def store_from_option(store: str | None) -> ResultsStore:
    """The store a command writes results to: what it cannot take because it does not answer is
    spooled (edgekit.store.spool), and what was spooled for it earlier is written now."""
    return open_store(store_location(store), spool=True)


def store_to_read(store: str | None) -> ResultsStore:
    """The store a command only reads, opened read-only: StoreError (exit 2) "no results store at
    LOCATION" when there is none, and nothing is created."""
    return open_store(store_location(store), read_only=True)


def store_to_read_if_any(store: str | None) -> ResultsStore | None:
    """store_to_read(), or None when there is no store at that location."""
    try:
        return store_to_read(store)
    except StoreError as exc:
        if exc.data.get("missing"):
            return None
        raise


def existing_path(value: str) -> Path:
    return Path(value).expanduser()


InventoryOption = Annotated[
    Path | None,
    typer.Option("--inventory", help="Devices TOML (default: $EDGEKIT_HOME/devices.toml)."),
]

OutputKindOption = Annotated[
    list[str] | None,
    typer.Option(
        "--output-kind",
        metavar="NAME=KIND",
        help=f"NAME=KIND ({'|'.join(OUTPUT_KINDS)}): how to judge an output; only scores get top-1.",
    ),
]

ProviderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--provider",
        metavar="NAME",
        help="ONNX: an onnxruntime execution provider, repeatable, preferred first: cpu, cuda, tensorrt, "
        "openvino, ggml, qnn, coreml, xnnpack, or onnxruntime's own name (CUDAExecutionProvider); "
        "checked here (unknown: exit 2), the device must have it (else exit 3). "
        "Default: the profile's [accelerators].",
    ),
]
ProviderOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--provider-option",
        metavar="KEY=VALUE",
        help="An option of the first --provider, or PROVIDER.KEY=VALUE for any (repeatable); a key "
        "with a dot needs the prefix: tensorrt.ep.context_enable=1.",
    ),
]
DelegateOption = Annotated[
    list[str] | None,  # a list so that a second --delegate is an error, not silently the one used
    typer.Option(
        "--delegate",
        metavar="NAME|PATH",
        help="TFLite: default, xnnpack, none (no delegate), gpu, edgetpu, or a delegate library's path "
        "on the device. Default: the profile's, else the interpreter's default (XNNPACK).",
    ),
]
DelegateOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--delegate-option",
        metavar="KEY=VALUE",
        help="An option of an external delegate (gpu, edgetpu or a library path; repeatable). The "
        "built-in ones (default, xnnpack, none) take none: XNNPACK's threads come from --threads.",
    ),
]


FreshEngineOption = Annotated[
    bool,
    typer.Option(
        "--fresh-engine",
        help="TensorRT: build the engine again instead of loading the one cached on the device.",
    ),
]


def accelerator_request(
    provider: list[str] | None,
    provider_option: list[str] | None,
    delegate: list[str] | None,
    delegate_option: list[str] | None,
    fresh_engine: bool = False,
) -> AcceleratorRequest:
    """The accelerator flags as one request (edgekit.core.accelerators), checked: UsageError (exit 2),
    also for --delegate given more than once (a model runs with one delegate)."""
    if delegate and len(delegate) > 1:
        raise UsageError(
            f"--delegate given {len(delegate)} times ({', '.join(delegate)}): a TFLite model runs with one"
        )
    request = AcceleratorRequest(
        providers=tuple(provider or ()),
        provider_options=tuple(provider_option or ()),
        delegate=delegate[0] if delegate else None,
        delegate_options=tuple(delegate_option or ()),
        fresh_engine=fresh_engine,
    )
    request.validate()
    return request
