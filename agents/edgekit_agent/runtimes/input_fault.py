"""Telling an input the model rejects at run time from any other inference failure.

A runtime that refuses a feed (a shape its operators cannot take, a dtype it does not declare)
is the user's input, not the device: such failures become ``InputError`` (exit 2 on the host)
naming the input, the shape and dtype it was fed and what the model declares; everything else
stays ``InferenceError``. Recognised as input faults: onnxruntime's INVALID_ARGUMENT status
(``InvalidArgument`` exception), and runtime messages about dimensions, shapes, ranks or data
types (onnxruntime's "dimension mismatch", "Got invalid dimensions", "Unexpected input data
type"; TFLite's "Dimension mismatch" from set_tensor / resize_tensor_input).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

from edgekit_agent.failure import AgentFailure, first_line

INPUT_FAULT_WORDS = (
    "invalid_argument",
    "invalid argument",
    "dimension",
    "shape",
    "rank",
    "data type",
    "broadcast",
    "cannot set tensor",
)
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : ")


def _show(dims: Sequence[Any]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _differs(declared: Sequence[Any], shape: Sequence[int]) -> bool:
    """The fed shape fills an open dimension or contradicts the declared rank or a fixed size."""
    if len(declared) != len(shape):
        return True
    return any(not isinstance(d, int) or d != s for d, s in zip(declared, shape))


def input_failure(
    exc: BaseException, feeds: Dict[str, Any], declared: Dict[str, Any]
) -> Optional[AgentFailure]:
    """An ``InputError`` for `exc` when it is the inputs' fault, else None.

    feeds: {input name: numpy array fed}; declared: {input name: (dims, dtype text)} as the
    runtime declares them (dims hold ints, or strings/None for open dimensions).
    """
    text = first_line(exc)
    lowered = text.lower()
    if type(exc).__name__ != "InvalidArgument" and not any(word in lowered for word in INPUT_FAULT_WORDS):
        return None
    names: List[str] = [n for n in feeds if re.search(r"(?<![\w.])%s(?![\w.])" % re.escape(n), text)]
    if len(names) != 1:
        suspects = [
            n
            for n in feeds
            if n in declared and _differs(declared[n][0], list(getattr(feeds[n], "shape", ())))
        ]
        names = suspects or names or list(feeds)
    parts = []
    for name in names:
        value = feeds.get(name)
        fed = "%s %s" % (_show(list(getattr(value, "shape", ()))), getattr(value, "dtype", "?"))
        dims, dtype = declared.get(name, ((), "?"))
        parts.append("input %r fed as %s, the model declares %s %s" % (name, fed, _show(dims), dtype))
    reason = _ORT_PREFIX.sub("", text)
    return AgentFailure(
        "InputError",
        "%s; the model rejected it: %s" % ("; ".join(parts), reason),
        inputs=names,
        input=names[0] if len(names) == 1 else None,
        shapes={n: list(getattr(feeds.get(n), "shape", ())) for n in names},
    )
