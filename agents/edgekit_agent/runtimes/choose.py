"""Which runtime runs an artifact, and opening it there."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from edgekit_agent.failure import AgentFailure


def runtime_for(path: str, runtime: str) -> str:
    """ "auto" -> "tflite" for *.tflite, else "onnxruntime"; an unknown name is a BadRequest."""
    if runtime == "auto":
        return "tflite" if path.endswith(".tflite") else "onnxruntime"
    if runtime not in ("onnxruntime", "tflite"):
        raise AgentFailure("BadRequest", "unknown runtime %r (onnxruntime, tflite, auto)" % runtime)
    return runtime


# bench params each runtime takes (docs/protocol.md); chosen_by applies to both
RUNTIME_SETTINGS = {
    "onnxruntime": ("providers", "provider_options"),
    "tflite": ("delegate", "delegate_options"),
}
COMMON_SETTINGS = ("chosen_by",)
# onnxruntime's TensorRT engine cache: taken by ONNX models, ignored for TFLite (the host sends
# fresh_engine for every bench)
ENGINE_SETTINGS = ("fresh_engine", "engine_cache_max_mb")
MODEL_KIND = {"onnxruntime": "ONNX", "tflite": "TFLite"}


def accel_settings(params: Dict[str, Any], runtime: str) -> Dict[str, Any]:
    """The accelerator params given (not null) for this runtime, as keyword arguments of its model
    class; one of the other runtime's given is a BadRequest (it would be ignored silently).
    `delegate: "default"` is the TFLite default and is accepted (and dropped) for onnxruntime."""
    names = RUNTIME_SETTINGS[runtime] + COMMON_SETTINGS
    if runtime == "onnxruntime":
        names += ENGINE_SETTINGS
    given = {k: params[k] for k in names if params.get(k) is not None}
    for other, names in RUNTIME_SETTINGS.items():
        if other == runtime:
            continue
        foreign = sorted(k for k in names if params.get(k) not in (None, {}, []))
        if params.get("delegate") == "default" and runtime != "tflite":
            foreign = [k for k in foreign if k != "delegate"]
        if foreign:
            raise AgentFailure(
                "BadRequest",
                "params.%s applies to %s models only, not to %s models (runtime %s)"
                % (foreign[0], MODEL_KIND[other], MODEL_KIND[runtime], runtime),
                param=foreign[0],
            )
    return given


def open_model(
    path: str,
    runtime: str,
    threads: Optional[int],
    accel: Optional[Dict[str, Any]] = None,
    workdir: Optional[str] = None,
) -> Any:
    """The loaded model; ArtifactNotFound, RuntimeMissing, ProviderMissing (a provider asked for
    is not on the board), DelegateMissing (TFLite: a delegate library that does not load),
    BadRequest (an unknown provider) or ModelLoadError otherwise.
    accel: the runtime's accelerator settings (accel_settings), as keyword arguments.
    workdir: the agent's workdir (onnxruntime: the TensorRT engine cache goes under it)."""
    if not os.path.isfile(path):
        raise AgentFailure("ArtifactNotFound", "no such artifact on the device: %s" % path, path=path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # onnxruntime's and TFLite's bindings take UTF-8 paths only
        raise AgentFailure(
            "ModelLoadError",
            "%s: the runtimes open only files whose names are UTF-8; rename the file"
            % path.encode("utf-8", "backslashreplace").decode("ascii", "replace"),
            path=path.encode("utf-8", "backslashreplace").decode("utf-8"),
        ) from None
    if runtime == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise AgentFailure(
                "RuntimeMissing", "onnxruntime is not installed: pip install onnxruntime"
            ) from None
        from edgekit_agent.runtimes.onnx import OnnxRuntimeModel

        return OnnxRuntimeModel(path, threads, workdir=workdir, **(accel or {}))
    from edgekit_agent.runtimes.tflite import TFLiteModel

    return TFLiteModel(path, threads, **(accel or {}))
