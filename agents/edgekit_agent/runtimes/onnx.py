"""An ONNX model on onnxruntime's CPU execution provider."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from edgekit_agent.failure import AgentFailure, first_line


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

    def input_names(self) -> List[str]:
        return [i.name for i in self.session.get_inputs()]

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        session, names = self.session, self.output_names

        def run() -> Any:
            return session.run(names, feeds)

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return [
            {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
            for name, value in zip(self.output_names, values)
        ]
