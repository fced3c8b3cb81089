"""The accelerators this board has, for `devices doctor` (docs/protocol.md, `sensors` with
`"accelerators": true`): every onnxruntime execution provider of runtimes/providers.PROVIDERS and
every TFLite delegate of runtimes/tflite, each `available`, `missing` (with the library and the
exact install line from those tables) or `no_device` (a plugin EP that loads but offers no device
here, e.g. OpenVINO on an AMD CPU).

Plugin EPs are registered in the calling process to ask for their devices (once per process, as a
bench child does); built-in providers come from `get_available_providers()`. Nothing here raises.
"""

from __future__ import annotations

import ctypes.util
from typing import Any, Dict, List, Optional

from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.runtimes.onnx import session_fds
from edgekit_agent.runtimes.providers import PROVIDERS, resolve_one
from edgekit_agent.runtimes.tflite import (
    EDGETPU_INSTALL,
    GPU_INSTALL,
    GPU_LIBRARY,
    edgetpu_library,
    interpreter_module,
)

ORT_INSTALL = "pip install onnxruntime"
TFLITE_INSTALL = "pip install ai-edge-litert"


def _entry(
    kind: str,
    name: str,
    status: str,
    detail: str,
    library: Optional[str] = None,
    install: Optional[str] = None,
) -> Dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "status": status,
        "detail": detail,
        "library": library,
        "install": install,
    }


def onnx_providers() -> List[Dict[str, Any]]:
    """One entry per provider of PROVIDERS, in its order: {"kind": "provider", "name", "status",
    "detail" (version, or why not), "library", "install" (null when available)}."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return [
            _entry("provider", p.name, "missing", "onnxruntime: %s" % first_line(exc), p.library, ORT_INSTALL)
            for p in PROVIDERS.values()
        ]
    entries = []
    for provider in PROVIDERS.values():
        try:
            resolved = resolve_one(ort, provider)
        except AgentFailure as failure:
            why = failure.message.split("; install: ")[0].replace("provider %s: " % provider.name, "", 1)
            loads = provider.kind == "plugin" and "offers no device" in why
            entries.append(
                _entry(
                    "provider",
                    provider.name,
                    "no_device" if loads else "missing",
                    why,
                    provider.library,
                    None if loads else provider.install,
                )
            )
            continue
        entries.append(
            _entry(
                "provider",
                provider.name,
                "available",
                "%s %s (%s)" % (provider.package, resolved.version or "", provider.ep_name),
            )
        )
    return entries


def _find_library(file_name: str) -> Optional[str]:
    """ctypes.util.find_library for a library file name ("libedgetpu.so.1" -> "edgetpu")."""
    short = file_name[3:] if file_name.startswith("lib") else file_name
    return ctypes.util.find_library(short.split(".")[0])


def tflite_delegates() -> List[Dict[str, Any]]:
    """XNNPACK (built into the installed TFLite runtime, applied by default), the GPU delegate
    library and Coral's libedgetpu (found with ctypes.util.find_library): {"kind": "delegate",
    "name", "status", "detail", "library", "install"}."""
    try:
        module, version = interpreter_module()
    except AgentFailure as failure:
        return [
            _entry("delegate", name, "missing", failure.message, library, TFLITE_INSTALL)
            for name, library in (("xnnpack", None), ("gpu", GPU_LIBRARY), ("edgetpu", edgetpu_library()))
        ]
    runtime = "%s %s" % (module.__name__.split(".")[0], version or "")
    entries = [_entry("delegate", "xnnpack", "available", "built into %s (applied by default)" % runtime)]
    for name, library, install in (
        ("gpu", GPU_LIBRARY, GPU_INSTALL),
        ("edgetpu", edgetpu_library(), EDGETPU_INSTALL),
    ):
        found = _find_library(library)
        if found:
            entries.append(_entry("delegate", name, "available", "%s found" % found, library))
        else:
            entries.append(_entry("delegate", name, "missing", "%s not found" % library, library, install))
    return entries


def accelerators() -> List[Dict[str, Any]]:
    """onnx_providers() then tflite_delegates(); never raises. While the runtimes and plugin
    libraries load, fd 1 points at fd 2: what they print cannot reach the agent's JSON-lines stdout."""
    with session_fds(False):
        return onnx_providers() + tflite_delegates()
