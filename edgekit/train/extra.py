"""The optional `train` extra: one clear line when PyTorch is missing."""

from __future__ import annotations

from typing import Any

from edgekit.core.errors import UsageError

TRAIN_EXTRA_HINT = "pip install torch==2.13.0 (CPU build), or pip install -e '.[train]'"


def require_torch(what: str = "training") -> Any:
    """The torch module, or a UsageError naming the install command."""
    try:
        import torch
    except ImportError:
        raise UsageError(f"{what} needs PyTorch, which is not installed: {TRAIN_EXTRA_HINT}") from None
    return torch
