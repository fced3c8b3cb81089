"""Installed runtime versions, from package metadata (no runtime is imported)."""

from __future__ import annotations

from typing import Dict, Optional

RUNTIME_PACKAGES = {
    "onnxruntime": "onnxruntime",
    "tflite_runtime": "tflite-runtime",
    "ai_edge_litert": "ai-edge-litert",
}


def package_version(distribution: str) -> Optional[str]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return metadata.version(distribution)
    except Exception:
        return None


def read_runtime_versions() -> Dict[str, Optional[str]]:
    return {name: package_version(dist) for name, dist in RUNTIME_PACKAGES.items()}
