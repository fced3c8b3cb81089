"""onnxruntime execution providers by edgekit name: which ones exist, and resolving a request.

A requested provider is resolved BEFORE any session exists, to a built-in provider that this
onnxruntime build lists in `get_available_providers()`, or to a plugin EP (onnxruntime's
plugin-EP API, `register_execution_provider_library`) that offers at least one `OrtEpDevice` here.
Anything else is never handed to onnxruntime: it falls back to the CPU with only a Python warning
when a provider is missing, and for an unknown name it also prints "EP Error" on stdout (the bench
child's JSON-lines channel). An unknown name is a `BadRequest`; a known one that is not there is
`ProviderMissing` (exit 3 on the host) with the library and the install line.

Sources: onnxruntime's Python API (`get_available_providers`, `register_execution_provider_library`,
`get_ep_devices`, `SessionOptions.add_provider_for_devices`), docs/protocol.md ("Providers").
"""

from __future__ import annotations

import importlib.util
from importlib import metadata  # imported with the module: not inside a timed model load
from typing import Any, Dict, List, NamedTuple, Optional, Set

from edgekit_agent.failure import AgentFailure, first_line

CPU_EP = "CPUExecutionProvider"
CHOSEN_BY = ("explicit", "profile", "default")


class Provider(NamedTuple):
    name: str  # edgekit name: "cpu", "cuda", ...
    kind: str  # "builtin": part of an onnxruntime build; "plugin": a plugin-EP package
    ep_name: str  # onnxruntime's name for it
    module: Optional[str]  # plugin: the Python module that knows the library's path
    package: str  # the distribution that brings it (its version goes into provider_versions)
    library: str  # what is missing when it is missing
    install: str  # the exact install line


PROVIDERS: Dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("cpu", "builtin", CPU_EP, None, "onnxruntime", "onnxruntime", "pip install onnxruntime"),
        Provider(
            "cuda",
            "builtin",
            "CUDAExecutionProvider",
            None,
            "onnxruntime-gpu",
            "libonnxruntime_providers_cuda.so",
            "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
            " (Jetson JetPack 6: pip install onnxruntime-gpu --index-url https://pypi.jetson-ai-lab.io/jp6/cu126)",
        ),
        Provider(
            "tensorrt",
            "builtin",
            "TensorrtExecutionProvider",
            None,
            "onnxruntime-gpu",
            "libonnxruntime_providers_tensorrt.so",
            "pip uninstall -y onnxruntime && pip install onnxruntime-gpu tensorrt"
            " (Jetson: TensorRT comes with JetPack, sudo apt install nvidia-jetpack)",
        ),
        Provider(
            "openvino",
            "plugin",
            "OpenVINOExecutionProvider",
            "onnxruntime_ep_openvino",
            "onnxruntime-ep-openvino",
            "onnxruntime_ep_openvino",
            "pip install onnxruntime-ep-openvino (Intel CPU/GPU/NPU; x86_64 Linux and Windows)",
        ),
        Provider(
            "ggml",
            "plugin",
            "ggml",
            "onnxruntime_ggml",
            "onnxruntime-ggml",
            "onnxruntime_ggml",
            "pip install --no-deps onnxruntime-ggml==0.2.0",
        ),
        Provider(
            "qnn",
            "builtin",
            "QNNExecutionProvider",
            None,
            "onnxruntime-qnn",
            "libQnnHtp.so",
            "pip uninstall -y onnxruntime && pip install onnxruntime-qnn",
        ),
        Provider(
            "coreml",
            "builtin",
            "CoreMLExecutionProvider",
            None,
            "onnxruntime",
            "CoreML (macOS onnxruntime wheels)",
            "pip install onnxruntime (on macOS)",
        ),
        Provider(
            "xnnpack",
            "builtin",
            "XnnpackExecutionProvider",
            None,
            "onnxruntime",
            "onnxruntime built with --use_xnnpack",
            "build onnxruntime with --use_xnnpack (the PyPI wheels do not have it)",
        ),
    )
}
# onnxruntime's own names are accepted too ("CUDAExecutionProvider" -> "cuda").
BY_EP_NAME = {p.ep_name.lower(): p.name for p in PROVIDERS.values()}

_registered: Set[str] = set()  # plugin EPs registered in this process (once each)


class Resolved(NamedTuple):
    provider: Provider
    plugin_devices: List[Any]  # the OrtEpDevices to use (plugin EPs), else []
    version: Optional[str]  # the provider library's version, when known


def canonical(name: str) -> str:
    """The edgekit name for `name` (edgekit or onnxruntime spelling, any case); BadRequest if unknown."""
    key = name.strip().lower()
    if key in PROVIDERS:
        return key
    if key in BY_EP_NAME:
        return BY_EP_NAME[key]
    raise AgentFailure(
        "BadRequest",
        "unknown execution provider %r (%s)" % (name, ", ".join(sorted(PROVIDERS))),
        param="providers",
    )


def missing(provider: Provider, why: str, installed: bool = False) -> AgentFailure:
    """ProviderMissing naming the library and the install line (left out of the message when the
    package is installed and offers no device here: installing it again would not help)."""
    hint = "" if installed else "; install: %s" % provider.install
    return AgentFailure(
        "ProviderMissing",
        "provider %s: %s%s" % (provider.name, why, hint),
        provider=provider.name,
        library=provider.library,
        install=provider.install,
    )


def _ep_devices(ort: Any, ep_name: str) -> List[Any]:
    get = getattr(ort, "get_ep_devices", None)
    if get is None:  # onnxruntime < 1.22 has no plugin-EP API
        return []
    return [d for d in get() if d.ep_name == ep_name]


def _cpu_vendor(ort: Any) -> str:
    for device in _ep_devices(ort, CPU_EP):
        return str(getattr(device.device, "vendor", "") or "unknown")
    return "unknown"


def _register_plugin(ort: Any, provider: Provider) -> None:
    """Load the plugin's library into onnxruntime, once per process; ProviderMissing if it cannot."""
    if provider.ep_name in _registered:
        return
    try:
        module = __import__(provider.module or "")
    except ImportError:
        raise missing(provider, "Python package %s is not installed" % provider.package) from None
    path_of = getattr(module, "get_library_path", None) or getattr(module, "library_path", None)
    if not hasattr(ort, "register_execution_provider_library") or path_of is None:
        raise missing(
            provider, "onnxruntime %s has no plugin-EP API (needs >= 1.23)" % ort.__version__
        ) from None
    try:
        path = path_of()
        ort.register_execution_provider_library(provider.ep_name, path)
    except Exception as exc:
        if "already registered" not in str(exc):
            raise missing(provider, "cannot load its library: %s" % first_line(exc)) from None
    _registered.add(provider.ep_name)


def _importable(module: Optional[str]) -> bool:
    return bool(module) and importlib.util.find_spec(module or "") is not None


def _package_version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except Exception:
        return None


def resolve_one(ort: Any, provider: Provider) -> Resolved:
    """The provider ready to be used by a session, or ProviderMissing naming library and install line."""
    available = ort.get_available_providers()
    # A plugin EP is listed as available once registered, but a session gets it only through its
    # devices; a build with the provider built in (onnxruntime-openvino) has no plugin module.
    plugin = provider.kind == "plugin" and (
        provider.ep_name not in available or provider.ep_name in _registered or _importable(provider.module)
    )
    if provider.ep_name in available and not plugin:
        version = ort.__version__ if provider.package.startswith("onnxruntime") else None
        return Resolved(provider, [], _package_version(provider.package) or version)
    if plugin:
        _register_plugin(ort, provider)
        devices = _ep_devices(ort, provider.ep_name)
        if not devices:
            raise missing(
                provider,
                "%s %s is registered but offers no device on this machine (CPU vendor %s; it "
                "supports: %s)"
                % (
                    provider.package,
                    _package_version(provider.package) or "",
                    _cpu_vendor(ort),
                    provider.install.partition("(")[2].rstrip(")") or "other hardware",
                ),
                installed=True,
            )
        version = dict(getattr(devices[0], "ep_metadata", {}) or {}).get("version")
        return Resolved(provider, devices, version or _package_version(provider.package))
    # e.g. the CUDA plugin EP bundled in onnxruntime >= 1.32 GPU wheels
    devices = _ep_devices(ort, provider.ep_name)
    if devices:
        return Resolved(provider, devices, ort.__version__)
    raise missing(
        provider,
        "onnxruntime %s here has no %s (available: %s)"
        % (ort.__version__, provider.ep_name, ", ".join(available_here(ort))),
    )


def available_here(ort: Any) -> List[str]:
    """onnxruntime's available providers, then the plugin EPs installed here as "ggml (plugin)"
    (onnxruntime lists a plugin EP only once it is registered in this process)."""
    plugins = [p for p in PROVIDERS.values() if p.kind == "plugin" and _importable(p.module)]
    ep_names = {p.ep_name for p in plugins}
    listed = [name for name in ort.get_available_providers() if name not in ep_names]
    return listed + ["%s (plugin)" % p.name for p in plugins]


def resolve(ort: Any, names: List[str], chosen_by: str) -> List[Resolved]:
    """Resolve the requested providers in order (the CPU is added last when it is not named).

    chosen_by "profile": providers the board lacks are dropped (the profile names what a board
    MAY have); "explicit"/"default": a missing one raises ProviderMissing. Unknown names raise
    BadRequest in every case, before anything is loaded."""
    wanted = []
    for name in names:
        key = canonical(name)
        if key not in wanted:
            wanted.append(key)
    resolved = []
    for key in wanted:
        try:
            resolved.append(resolve_one(ort, PROVIDERS[key]))
        except AgentFailure as failure:
            if chosen_by != "profile" or failure.error_type != "ProviderMissing":
                raise
    if not any(r.provider.name == "cpu" for r in resolved):
        resolved.append(resolve_one(ort, PROVIDERS["cpu"]))
    return resolved
