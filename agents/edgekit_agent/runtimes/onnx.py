"""An ONNX model on onnxruntime's CPU execution provider."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from edgekit_agent.failure import AgentFailure, first_line
from edgekit_agent.runtimes.describe import describe_outputs

ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OnnxRuntimeModel:
    name = "onnxruntime"

    def __init__(self, path: str, threads: Optional[int]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise AgentFailure(
                "ModelLoadError", "onnxruntime cannot load %s: %s" % (path, first_line(exc))
            ) from None
        self.version = ort.__version__
        self.threads = threads
        self.providers = self.session.get_providers()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_types = [o.type for o in self.session.get_outputs()]

    def accelerators(self) -> Dict[str, Any]:
        """The reply's runtime fields about accelerators beyond `providers` (none yet)."""
        return {}

    def input_names(self) -> List[str]:
        return [i.name for i in self.session.get_inputs()]

    def declared_inputs(self) -> Dict[str, Any]:
        """{name: (dims, dtype)}: dims as declared (ints, or names/None when open)."""
        return {i.name: (list(i.shape), ORT_TYPES.get(i.type, i.type)) for i in self.session.get_inputs()}

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        session, names = self.session, self.output_names

        def run() -> Any:
            return session.run(names, feeds)

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return describe_outputs(self.output_names, values, self.output_types)
