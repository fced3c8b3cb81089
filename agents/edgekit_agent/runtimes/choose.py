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


def open_model(
    path: str,
    runtime: str,
    threads: Optional[int],
    delegate: Optional[str] = None,
    delegate_options: Optional[Dict[str, str]] = None,
) -> Any:
    """The loaded model; ArtifactNotFound, RuntimeMissing, ModelLoadError or (TFLite)
    DelegateMissing otherwise; a delegate asked for an onnxruntime model is a BadRequest."""
    if not os.path.isfile(path):
        raise AgentFailure("ArtifactNotFound", "no such artifact on the device: %s" % path, path=path)
    if runtime == "onnxruntime":
        if delegate not in (None, "default") or delegate_options:
            raise AgentFailure(
                "BadRequest", "delegate and delegate_options apply to TFLite models, not to %s" % path
            )
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise AgentFailure(
                "RuntimeMissing", "onnxruntime is not installed: pip install onnxruntime"
            ) from None
        from edgekit_agent.runtimes.onnx import OnnxRuntimeModel

        return OnnxRuntimeModel(path, threads)
    from edgekit_agent.runtimes.tflite import TFLiteModel

    return TFLiteModel(path, threads, delegate, delegate_options)
