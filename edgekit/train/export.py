"""torch -> ONNX through the legacy exporter (`dynamo=False`, opset 17): the dynamo exporter may
emit another opset than asked and trips on batch-1 examples with dynamic dims."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.train.extra import require_torch

OPSET = 17


def export_onnx(
    model: Any,
    example: np.ndarray | Sequence[np.ndarray],
    out: Path,
    *,
    input_name: str | Sequence[str] = "input",
    output_name: str = "logits",
) -> Path:
    """Write `model` to `out` as ONNX (opset OPSET) with a symbolic batch dimension on every input
    and the output; `example` holds one float32 array per input (only its first row is traced),
    named by `input_name`. Returns `out`."""
    torch = require_torch()
    examples = [example] if isinstance(example, np.ndarray) else list(example)
    names = [input_name] if isinstance(input_name, str) else list(input_name)
    model.eval()
    torch.onnx.export(
        model,
        tuple(torch.from_numpy(np.ascontiguousarray(e[:1])) for e in examples),
        str(out),
        input_names=names,
        output_names=[output_name],
        dynamic_axes={name: {0: "batch"} for name in [*names, output_name]},
        opset_version=OPSET,
        dynamo=False,
    )
    return out


def parameter_count(model: Any) -> int:
    """The number of scalar parameters (weights and biases) of a torch module."""
    return int(sum(p.numel() for p in model.parameters()))
