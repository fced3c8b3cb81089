"""Accelerator settings of a bench: onnxruntime execution providers and TFLite delegates.

What the user asks for (`--provider`, `--provider-option`, `--delegate`, `--delegate-option`)
and what the device profile prefers (its optional `[accelerators]` table) become the bench
params `providers`, `provider_options`, `delegate`, `delegate_options` and `chosen_by`
(docs/protocol.md). The agent resolves the names on the board: a provider asked for explicitly
that the board lacks is an error there (ProviderMissing / DelegateMissing, exit 3); the
profile's list is a preference, of which the agent uses what the board has.

chosen_by: "explicit" (from the command line), "profile" (the profile's [accelerators]) or
"default" (neither: onnxruntime's CPU provider, the TFLite interpreter's default delegates).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from edgekit.core.errors import UsageError

# onnxruntime execution providers by edgekit name, with onnxruntime's own name for each: the
# same table as the agent's PROVIDERS (agents/edgekit_agent/runtimes/providers.py; a unit test
# keeps the two equal). The host checks names against it before any device is touched; whether
# the board HAS a provider is the agent's to say (ProviderMissing, exit 3).
PROVIDER_NAMES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "ggml": "ggml",
    "qnn": "QNNExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
_BY_ORT_NAME = {ort.lower(): name for name, ort in PROVIDER_NAMES.items()}

# TFLite delegates by name; anything containing "/" or ending in ".so" is a library path on the
# board (an external delegate, e.g. /usr/lib/libedgetpu.so.1).
DELEGATE_NAMES: dict[str, str] = {
    "default": "the interpreter's default delegates (XNNPACK in current TFLite builds)",
    "xnnpack": "XNNPACK, explicitly",
    "none": "no delegate at all (the interpreter's built-in CPU kernels)",
    "gpu": "the TFLite GPU delegate",
    "edgetpu": "the Coral Edge TPU delegate (libedgetpu.so.1)",
}
# The interpreter's own delegates (the agent's BUILTIN_DELEGATES, agents/edgekit_agent/runtimes/
# tflite.py): they take no delegate options (XNNPACK's threads come from --threads); only an
# external delegate (gpu, edgetpu, a library path) is loaded with options.
BUILTIN_DELEGATES = ("default", "xnnpack", "none")
CHOSEN_BY = ("explicit", "profile", "default")


def is_delegate_path(delegate: str) -> bool:
    """Whether --delegate names a library file on the board rather than a delegate."""
    return "/" in delegate or delegate.endswith(".so") or ".so." in delegate


# a real option of each flag, for its usage message (num_threads is no option of either)
_EXAMPLE = {"--provider-option": "trt_fp16_enable=True", "--delegate-option": "device=usb:0"}


def _key_value(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(
            f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} {_EXAMPLE.get(flag, 'key=value')}"
        )
    return key.strip(), value.strip()


def provider_name(name: str, flag: str = "--provider") -> str:
    """The edgekit name of a provider given by its edgekit or onnxruntime name, in any case
    ("CUDAExecutionProvider" -> "cuda"). Raises UsageError (exit 2) for an unknown name, listing
    the known ones with the closest as a hint."""
    key = name.strip().lower()
    if key in PROVIDER_NAMES:
        return key
    if key in _BY_ORT_NAME:
        return _BY_ORT_NAME[key]
    stem = key.removesuffix("executionprovider")  # "GgmlExecutionProvider": ggml's is just "ggml"
    close = difflib.get_close_matches(stem, list(PROVIDER_NAMES), n=1) or difflib.get_close_matches(
        key, list(_BY_ORT_NAME), n=1
    )
    hint = f" (did you mean {_BY_ORT_NAME.get(close[0], close[0])!r}?)" if close else ""
    raise UsageError(
        f"{flag} {name!r}: unknown execution provider{hint}; expected one of "
        f"{', '.join(PROVIDER_NAMES)} (or onnxruntime's name, e.g. CUDAExecutionProvider)"
    )


def check_provider_names(names: Iterable[str], flag: str = "--provider") -> tuple[str, ...]:
    """The provider names as edgekit names (edgekit.core.accelerators.provider_name); UsageError
    (exit 2) for an empty or unknown one, or one given twice (under either of its names). Whether
    the board has them is the agent's to say. `flag` names the setting in messages."""
    checked: list[str] = []
    for name in names:
        if not name.strip():
            raise UsageError(
                f"{flag} {name!r}: expected a provider name such as tensorrt, cuda, openvino or cpu"
            )
        clean = provider_name(name, flag)
        if clean in checked:
            raise UsageError(f"{flag} {clean}: given twice (the order of {flag} is the preference)")
        checked.append(clean)
    return tuple(checked)


def parse_provider_options(items: Iterable[str], providers: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`--provider-option` items -> {provider: {key: value}}: `KEY=VALUE` applies to the first
    provider of `providers`, `PROVIDER.KEY=VALUE` to that provider (edgekit or onnxruntime name;
    it must be in the list). A key with a dot in it (TensorRT's `ep.context_enable`) therefore
    needs the prefix: `tensorrt.ep.context_enable=1`. Raises UsageError (exit 2) for another form,
    an unknown or empty provider prefix, or when no provider is in effect."""
    options: dict[str, dict[str, str]] = {}
    for item in items:
        key, value = _key_value(item, "--provider-option")
        provider, dot, bare = key.partition(".")
        if dot:
            if not provider.strip():
                raise UsageError(
                    f"--provider-option {item!r}: no provider before the '.'; expected "
                    "PROVIDER.KEY=VALUE (e.g. cuda.device_id=0) or KEY=VALUE"
                )
            try:
                provider = provider_name(provider, "--provider-option")
            except UsageError as exc:
                raise UsageError(
                    f"{exc.message}; a key with a '.' is PROVIDER.KEY "
                    f"(e.g. tensorrt.ep.context_enable=1 for TensorRT's ep.context_enable)"
                ) from None
            if provider not in providers:
                raise UsageError(
                    f"--provider-option {item!r}: provider {provider!r} is not among the providers in "
                    f"effect ({', '.join(providers) or 'none'}); add --provider {provider}"
                )
            key = bare.strip()
        elif providers:
            provider = providers[0]
        else:
            raise UsageError(
                f"--provider-option {item!r}: no provider to apply it to; name one with --provider"
            )
        if not key:
            raise UsageError(f"--provider-option {item!r}: expected KEY=VALUE or PROVIDER.KEY=VALUE")
        options.setdefault(provider, {})[key] = value
    return options


def check_delegate(delegate: str) -> str:
    """--delegate: a name in DELEGATE_NAMES (lower-cased) or a library path on the board (kept as
    given); UsageError (exit 2) for an unknown name."""
    if is_delegate_path(delegate):
        return delegate
    name = delegate.strip().lower()
    if name not in DELEGATE_NAMES:
        close = difflib.get_close_matches(name, list(DELEGATE_NAMES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(
            f"--delegate {delegate!r}: unknown delegate{hint}; expected one of "
            f"{', '.join(DELEGATE_NAMES)} or the path of a delegate library on the device"
        )
    return name


def check_delegate_options(options: Mapping[str, str], delegate: str | None) -> None:
    """Delegate options go to an external delegate only (gpu, edgetpu or a library path): UsageError
    (exit 2) for options with a built-in delegate or none named (`delegate` None: the default)."""
    if not options:
        return
    name = "default" if delegate is None else delegate
    if name in BUILTIN_DELEGATES:
        raise UsageError(
            f"--delegate-option {', '.join(options)}: delegate options apply to an external delegate "
            f"(gpu, edgetpu or a library path), not to {name!r}"
            + (" (XNNPACK's threads come from --threads)" if name in ("default", "xnnpack") else "")
        )


def parse_delegate_options(items: Iterable[str], delegate: str | None) -> dict[str, str]:
    """`--delegate-option KEY=VALUE` items -> {key: value}; UsageError (exit 2) for another form,
    or for options with a delegate that takes none (check_delegate_options)."""
    options = dict(_key_value(item, "--delegate-option") for item in items)
    check_delegate_options(options, delegate)
    return options


@dataclass(frozen=True)
class AcceleratorRequest:
    """What the command line asked for (empty: nothing, the profile's or the default applies)."""

    providers: tuple[str, ...] = ()
    provider_options: tuple[str, ...] = ()  # raw --provider-option items
    delegate: str | None = None
    delegate_options: tuple[str, ...] = ()  # raw --delegate-option items
    fresh_engine: bool = False  # --fresh-engine: rebuild the TensorRT engine (the cache is dropped)

    def validate(self) -> None:
        """Raise UsageError (exit 2) for a malformed name or option (checked before any device)."""
        providers = check_provider_names(self.providers)
        if providers:
            parse_provider_options(self.provider_options, providers)
        else:  # applied to the profile's providers later (accelerator_params): the form only
            for item in self.provider_options:
                _key_value(item, "--provider-option")
        if self.delegate is not None:
            parse_delegate_options(self.delegate_options, check_delegate(self.delegate))
        else:  # applied to the profile's delegate later (accelerator_params): the form only
            for item in self.delegate_options:
                _key_value(item, "--delegate-option")

    def check_format(self, model_format: str | None) -> None:
        """Providers are onnxruntime's, delegates TFLite's: UsageError (exit 2) for the other kind."""
        if model_format == "tflite" and (self.providers or self.provider_options):
            raise UsageError(
                "--provider/--provider-option apply to ONNX models; a .tflite model takes --delegate"
            )
        if model_format == "onnx" and (self.delegate is not None or self.delegate_options):
            raise UsageError(
                "--delegate/--delegate-option apply to TFLite models; an ONNX model takes --provider"
            )

    def for_format(self, model_format: str | None) -> AcceleratorRequest:
        """This request without the settings of the other runtime (providers for a .tflite model,
        a delegate for an ONNX one): settings that cover several models (a fleet plan's) apply to
        the models they fit."""
        if model_format == "tflite":
            return replace(self, providers=(), provider_options=())
        if model_format == "onnx":
            return replace(self, delegate=None, delegate_options=())
        return self


def request_from_tables(
    providers: Iterable[str] = (),
    provider_options: Mapping[str, Mapping[str, str]] | None = None,
    delegate: str | None = None,
    delegate_options: Mapping[str, str] | None = None,
    fresh_engine: bool = False,
) -> AcceleratorRequest:
    """The request that settings given as tables (a fleet plan's keys, the same as a profile's
    [accelerators]) make: `provider_options` {provider: {key: value}} become the raw
    `PROVIDER.KEY=VALUE` items of --provider-option. Checked as the flags are: UsageError (exit 2)."""
    request = AcceleratorRequest(
        providers=tuple(providers),
        provider_options=tuple(
            f"{name}.{key}={value}"
            for name, values in (provider_options or {}).items()
            for key, value in values.items()
        ),
        delegate=delegate,
        delegate_options=tuple(f"{key}={value}" for key, value in (delegate_options or {}).items()),
        fresh_engine=fresh_engine,
    )
    request.validate()
    if delegate is None:  # no delegate named among the tables: the options would go to the default
        check_delegate_options(dict(delegate_options or {}), None)
    return request


@dataclass(frozen=True)
class AcceleratorPrefs:
    """A profile's [accelerators] table, as accelerator_params needs it."""

    providers: tuple[str, ...] = ()
    provider_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    delegate: str | None = None
    delegate_options: Mapping[str, str] = field(default_factory=dict)


def accelerator_params(
    request: AcceleratorRequest, prefs: AcceleratorPrefs, model_format: str | None
) -> dict[str, Any]:
    """The bench params for the model's runtime (docs/protocol.md): for ONNX `providers` (edgekit
    names, in order of preference), `provider_options` ({provider: {key: value}}, the profile's
    options of those providers overridden by --provider-option) and `chosen_by`; for TFLite
    `delegate`, `delegate_options` and `chosen_by`; `fresh_engine` (bool, rebuild a cached
    TensorRT engine) always. Keys not applicable are None. Raises
    UsageError (exit 2) as AcceleratorRequest.validate does."""
    params: dict[str, Any] = {
        "providers": None,
        "provider_options": None,
        "delegate": None,
        "delegate_options": None,
        "chosen_by": "default",
        "fresh_engine": request.fresh_engine,
    }
    if model_format == "tflite":
        if request.delegate is not None:
            delegate, chosen_by = check_delegate(request.delegate), "explicit"
            options = dict(prefs.delegate_options) if delegate == prefs.delegate else {}
        elif prefs.delegate is not None:
            delegate, chosen_by, options = prefs.delegate, "profile", dict(prefs.delegate_options)
        else:
            delegate, chosen_by, options = None, "default", {}
        options.update(parse_delegate_options(request.delegate_options, delegate))
        params.update(delegate=delegate, delegate_options=options or None, chosen_by=chosen_by)
        return params
    explicit = check_provider_names(request.providers)
    providers, chosen_by = (explicit, "explicit") if explicit else (prefs.providers, "profile")
    if not providers:
        if request.provider_options:
            parse_provider_options(request.provider_options, ())  # raises: no provider
        return params
    options = {name: dict(prefs.provider_options.get(name, {})) for name in providers}
    for name, values in parse_provider_options(request.provider_options, providers).items():
        options[name].update(values)
    params.update(
        providers=list(providers),
        provider_options={name: values for name, values in options.items() if values} or None,
        chosen_by=chosen_by,
    )
    return params
