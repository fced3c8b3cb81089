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


ONNX_SETTINGS = ("providers", "provider_options", "chosen_by")  # bench params only onnxruntime takes


def accel_settings(params: Dict[str, Any], runtime: str) -> Dict[str, Any]:
    """The accelerator params given (not null) for this runtime; an ONNX-only one given for another
    runtime is a BadRequest (it would be ignored silently)."""
    given = {k: params[k] for k in ONNX_SETTINGS if params.get(k) is not None}
    if given and runtime != "onnxruntime":
        raise AgentFailure(
            "BadRequest",
            "params.%s applies to onnxruntime only, not %s" % (sorted(given)[0], runtime),
            param=sorted(given)[0],
        )
    return given


def open_model(
    path: str, runtime: str, threads: Optional[int], accel: Optional[Dict[str, Any]] = None
) -> Any:
    """The loaded model; ArtifactNotFound, RuntimeMissing, ProviderMissing (a provider asked for
    is not on the board), BadRequest (an unknown provider) or ModelLoadError otherwise.
    accel: the runtime's accelerator settings (accel_settings)."""
    if not os.path.isfile(path):
        raise AgentFailure("ArtifactNotFound", "no such artifact on the device: %s" % path, path=path)
    if runtime == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise AgentFailure(
                "RuntimeMissing", "onnxruntime is not installed: pip install onnxruntime"
            ) from None
        from edgekit_agent.runtimes.onnx import OnnxRuntimeModel

        return OnnxRuntimeModel(path, threads, **(accel or {}))
    from edgekit_agent.runtimes.tflite import TFLiteModel

    return TFLiteModel(path, threads)
