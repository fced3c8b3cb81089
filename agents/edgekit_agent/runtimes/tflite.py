"""A TFLite model on ai-edge-litert's interpreter (else tflite-runtime's), with its delegate.

`delegate` (docs/protocol.md, bench params):
- "default" (or not given): the interpreter's own resolver, which applies XNNPACK by default in
  current builds (ai-edge-litert 2.x); the reply says whether it did (`default_applied`).
- "xnnpack": the same resolver, asked for explicitly (ai-edge-litert ships no separate XNNPACK
  library to load; its threads follow `threads`).
- "none": `OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`: the built-in kernels only.
- "gpu", "edgetpu" or a path to a shared library: an external delegate loaded with
  `load_delegate(library, delegate_options)`; the library must export
  `tflite_plugin_create_delegate` (TensorFlow's tensorflow/lite/delegates/external/README.md).
  The default delegates are then off, so every delegated node is the external delegate's.

Placement (`tflite_placement`) comes from the interpreter's op list: `_get_ops_details()` lists the
original nodes plus one `DELEGATE` node per delegated partition; the nodes a partition replaced
are found by walking back from its outputs to its inputs.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple

from edgekit_agent.facts.packages import package_version
from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.runtimes.describe import describe_outputs

BUILTIN_DELEGATES = ("default", "xnnpack", "none")
# Coral's libedgetpu per platform (coral.ai, "Run inference on the Edge TPU with Python").
EDGETPU_LIBRARIES = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}
EDGETPU_INSTALL = (
    "add the Coral apt repo (deb https://packages.cloud.google.com/apt coral-edgetpu-stable main), "
    "then sudo apt-get install libedgetpu1-std"
)
# TensorFlow's bazel target tensorflow/lite/delegates/gpu:libtensorflowlite_gpu_delegate.so
GPU_LIBRARY = "libtensorflowlite_gpu_delegate.so"
GPU_INSTALL = (
    "build TensorFlow's tensorflow/lite/delegates/gpu:libtensorflowlite_gpu_delegate.so for the "
    "board and give its path as the delegate"
)
EDGETPU_CUSTOM_OPS = ("edgetpu-custom-op", "edgetpu-custom-op-2")  # what edgetpu_compiler emits
CPU = "cpu"  # the by_provider key of the nodes the built-in kernels run


def edgetpu_library(platform: str = sys.platform) -> str:
    """The file name of Coral's Edge TPU delegate library on this platform."""
    for prefix, name in EDGETPU_LIBRARIES.items():
        if platform.startswith(prefix):
            return name
    return EDGETPU_LIBRARIES["linux"]


def external_library(delegate: str) -> Tuple[str, str, Optional[str]]:
    """(label in the reply, library to load, install line or None) for an external delegate."""
    if delegate == "edgetpu":
        return "edgetpu", edgetpu_library(), EDGETPU_INSTALL
    if delegate == "gpu":
        return "gpu", GPU_LIBRARY, GPU_INSTALL
    return delegate, delegate, None


def load_external(delegate: str, options: Dict[str, str], load_delegate: Any) -> Any:
    """The loaded external delegate; DelegateMissing naming the library when it cannot load.

    `load_delegate` raises OSError for a library that is missing or not a shared object,
    AttributeError for one without `tflite_plugin_create_delegate`, and ValueError when the
    delegate refused to be created (the only one its documentation names)."""
    label, library, install = external_library(delegate)
    previous_hook = sys.unraisablehook
    # The half-made Delegate's __del__ fails ("'Delegate' object has no attribute '_library'")
    # when the failed load's traceback goes away; that is noise on stderr, not news.
    sys.unraisablehook = _quiet_delegate_del(previous_hook)
    try:
        try:
            return load_delegate(library, options)
        except (OSError, AttributeError, ValueError) as exc:
            reason = first_line(exc)
    finally:
        sys.unraisablehook = previous_hook
    named = label if label == library else "%s (%s)" % (label, library)
    message = "TFLite delegate %s cannot be loaded: %s" % (named, reason)
    if install:
        message += " (install: %s)" % install
    raise AgentFailure("DelegateMissing", message, delegate=label, library=library, install=install)


def _quiet_delegate_del(previous: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if "Delegate.__del__" not in repr(unraisable.object):
            previous(unraisable)

    return hook


def tflite_placement(ops: List[Dict[str, Any]], delegate_label: str) -> Dict[str, Any]:
    """Placement from `_get_ops_details()`: the reply's `runtime.placement` (source "tflite_ops").

    by_provider has the delegate's label (nodes inside its partitions, "subgraphs" = partitions)
    and "cpu" (nodes the built-in kernels run, one subgraph each); entries with no node are left
    out. accelerated_fraction = delegated nodes / original nodes (null for a model with none)."""
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    originals = [o for o in ops if o["op_name"] != "DELEGATE"]
    by_index = {int(o["index"]): o for o in ops}
    producer = {int(t): int(o["index"]) for o in originals for t in o["outputs"]}
    inside = set()
    for node in delegates:
        boundary = {int(t) for t in node["inputs"]}
        todo = [int(t) for t in node["outputs"]]
        while todo:
            index = producer.get(todo.pop())
            if index is None or index in inside:
                continue
            inside.add(index)
            todo += [int(t) for t in by_index[index]["inputs"] if int(t) >= 0 and int(t) not in boundary]
    delegated = Counter(o["op_name"] for o in originals if int(o["index"]) in inside)
    on_cpu = Counter(o["op_name"] for o in originals if int(o["index"]) not in inside)
    by_provider = {}
    if delegated:
        by_provider[delegate_label] = {
            "nodes": sum(delegated.values()),
            "subgraphs": len(delegates),
            "op_types": dict(delegated),
        }
    if on_cpu:
        count = sum(on_cpu.values())
        by_provider[CPU] = {"nodes": count, "subgraphs": count, "op_types": dict(on_cpu)}
    total = len(originals)
    return {
        "source": "tflite_ops",
        "total_nodes": total,
        "by_provider": by_provider,
        "accelerated_fraction": sum(delegated.values()) / total if total else None,
    }


def interpreter_module() -> Tuple[Any, str]:
    try:
        import ai_edge_litert.interpreter as module  # successor of tflite-runtime

        return module, package_version("ai-edge-litert")
    except ImportError:
        try:
            import tflite_runtime.interpreter as module

            return module, package_version("tflite-runtime")
        except ImportError:
            raise AgentFailure("RuntimeMissing", "no TFLite runtime: pip install ai-edge-litert") from None


class TFLiteModel:
    name = "tflite"

    def __init__(
        self,
        path: str,
        threads: Optional[int],
        delegate: Optional[str] = None,
        delegate_options: Optional[Dict[str, str]] = None,
        chosen_by: Optional[str] = None,
    ) -> None:
        requested = delegate or "default"
        self.chosen_by = chosen_by or ("explicit" if delegate else "default")
        fallback = None  # why the profile's delegate was not used
        options = dict(delegate_options or {})
        if options and requested in BUILTIN_DELEGATES:
            raise AgentFailure(
                "BadRequest",
                "delegate_options apply to an external delegate (gpu, edgetpu or a library path), "
                "not to %r" % requested,
                param="delegate_options",
            )
        module, version = interpreter_module()
        kwargs: Dict[str, Any] = {"model_path": path, "num_threads": threads or None}
        label = "xnnpack"
        if requested not in BUILTIN_DELEGATES:
            label = external_library(requested)[0]
            try:
                kwargs["experimental_delegates"] = [load_external(requested, options, module.load_delegate)]
            except AgentFailure as failure:
                if self.chosen_by != "profile":
                    raise
                # the profile's delegate is a preference: the board lacks it, the default runs
                fallback = failure.message
                requested, label, options = "default", "xnnpack", {}
        if requested not in ("default", "xnnpack"):
            resolver = getattr(module, "OpResolverType", None)
            if resolver is None:
                raise AgentFailure(
                    "RuntimeMissing",
                    "this TFLite runtime (%s) cannot turn its default delegates off: "
                    "pip install ai-edge-litert" % module.__name__,
                )
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = module.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise AgentFailure("ModelLoadError", load_error(path, exc, requested)) from None
        self.version = version
        self.threads = threads
        self.providers = ["CPU"]
        self.placement, self.placement_reason = self._placement(label)
        delegated = bool(self.placement and self.placement["by_provider"].get(label))
        self.delegate = {
            "requested": requested,
            "applied": [label] if delegated else [],
            "default_applied": delegated and requested in ("default", "xnnpack"),
            "threads": threads,
        }
        if requested not in BUILTIN_DELEGATES:
            self.delegate["options"] = options
        if fallback:
            self.delegate["fallback_reason"] = fallback
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()

    def _placement(self, label: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
        ops_details = getattr(self.interpreter, "_get_ops_details", None)
        if ops_details is None:  # private API; tflite-runtime builds may lack it
            return None, "this TFLite runtime has no _get_ops_details(): placement unknown"
        return tflite_placement(ops_details(), label), None

    def runtime_info(self) -> Dict[str, Any]:
        """The reply's runtime.delegate, runtime.placement (and why placement is null) and
        runtime.chosen_by (docs/protocol.md)."""
        info = {"delegate": self.delegate, "placement": self.placement, "chosen_by": self.chosen_by}
        if self.placement_reason:
            info["placement_reason"] = self.placement_reason
        return info

    def input_names(self) -> List[str]:
        return [d["name"] for d in self._inputs]

    def declared_inputs(self) -> Dict[str, Any]:
        """{name: (dims, dtype)}: dims from the shape signature, None where it is open (-1)."""
        import numpy as np

        declared = {}
        for d in self._inputs:
            signature = d.get("shape_signature")
            dims = list(signature if signature is not None and len(signature) else d["shape"])
            declared[d["name"]] = ([int(v) if v >= 0 else None for v in dims], np.dtype(d["dtype"]).name)
        return declared

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        interpreter = self.interpreter
        for detail in self._inputs:
            value = feeds[detail["name"]]
            if list(detail["shape"]) != list(value.shape):
                interpreter.resize_tensor_input(detail["index"], list(value.shape))
        interpreter.allocate_tensors()
        pairs = [(d["index"], feeds[d["name"]]) for d in self._inputs]
        outputs = [d["index"] for d in self._outputs]

        def run() -> Any:
            for index, value in pairs:
                interpreter.set_tensor(index, value)
            interpreter.invoke()
            return [interpreter.get_tensor(i) for i in outputs]

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return describe_outputs([d["name"] for d in self._outputs], values)


def load_error(path: str, exc: BaseException, requested: str) -> str:
    """The ModelLoadError message; a model compiled by edgetpu_compiler without the Edge TPU
    delegate fails with "Encountered unresolved custom op: edgetpu-custom-op." and is named so."""
    text = str(exc)
    if any(op in text for op in EDGETPU_CUSTOM_OPS) and requested != "edgetpu":
        return (
            "TFLite cannot load %s: it was compiled for the Coral Edge TPU (edgetpu-custom-op) "
            "and needs delegate edgetpu (%s)" % (path, edgetpu_library())
        )
    return "TFLite cannot load %s: %s" % (path, first_line(exc))
