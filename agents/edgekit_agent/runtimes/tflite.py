"""A TFLite model on ai-edge-litert's interpreter (else tflite-runtime's)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from edgekit_agent.facts.packages import package_version
from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.runtimes.describe import describe_outputs


class TFLiteModel:
    name = "tflite"

    def __init__(self, path: str, threads: Optional[int]) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter  # successor of tflite-runtime

            version = package_version("ai-edge-litert")
        except ImportError:
            try:
                from tflite_runtime.interpreter import Interpreter

                version = package_version("tflite-runtime")
            except ImportError:
                raise AgentFailure(
                    "RuntimeMissing", "no TFLite runtime: pip install ai-edge-litert"
                ) from None
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise AgentFailure(
                "ModelLoadError", "TFLite cannot load %s: %s" % (path, first_line(exc))
            ) from None
        self.version = version
        self.threads = threads
        self.providers = ["CPU"]
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()

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
