"""Describing one inference's outputs for the bench reply, whatever their kind.

onnxruntime returns a numpy array for a tensor output, a list for a sequence output (of arrays,
or of dicts for a sequence of maps), a dict for a map output and None for an optional output
that holds nothing; TFLite returns arrays only. The description (docs/protocol.md, `bench`):

    tensor:   {"name", "kind": "tensor", "shape": [..], "dtype": "float32"}
    sequence: {"name", "kind": "sequence", "length": n, "elements": [<first 8 described>]}
    map:      {"name", "kind": "map", "length": n, "key_dtype": "int64", "value_dtype": "float32"}
    optional: {"name", "kind": "optional", "present": false}
              {"name", "kind": "optional", "present": true, "value": <the value described>}

An output declared optional (onnxruntime's type text `optional(...)`) that holds a value comes
back from onnxruntime as that value; `declared` types let the description say it is optional.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

MAX_ELEMENTS = 8  # a sequence's elements described one by one, up to this many


def _dtype_name(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    return str(dtype) if dtype is not None else type(value).__name__


def describe_value(value: Any) -> Dict[str, Any]:
    """One output value -> its description (without the name); never raises for a value kind."""
    if value is None:
        return {"kind": "optional", "present": False}
    if isinstance(value, dict):
        keys, values = list(value), list(value.values())
        return {
            "kind": "map",
            "length": len(value),
            "key_dtype": _dtype_name(keys[0]) if keys else None,
            "value_dtype": _dtype_name(values[0]) if values else None,
        }
    if isinstance(value, (list, tuple)):
        return {
            "kind": "sequence",
            "length": len(value),
            "elements": [describe_value(element) for element in value[:MAX_ELEMENTS]],
        }
    shape = getattr(value, "shape", None)
    if shape is not None:
        return {"kind": "tensor", "shape": [int(d) for d in shape], "dtype": _dtype_name(value)}
    return {"kind": "scalar", "shape": [], "dtype": type(value).__name__}


def describe_outputs(
    names: List[str], values: Any, declared: Optional[Sequence[str]] = None
) -> List[Dict[str, Any]]:
    """[{"name": ..., **describe_value(value)}] for each named output; `declared` (the runtime's
    type text per output, e.g. "optional(tensor(float))") marks present optionals."""
    types = list(declared) if declared is not None else [""] * len(names)
    described = []
    for name, value, kind in zip(names, values, types):
        if value is not None and kind.startswith("optional("):
            value_described = describe_value(value)
            described.append({"name": name, "kind": "optional", "present": True, "value": value_described})
        else:
            described.append(dict({"name": name}, **describe_value(value)))
    return described
