"""The agent's provider names, provider params and placement parsers (runtimes/providers.py,
runtimes/onnx.py, params.py), on onnxruntime's verbose session log lines as recorded with
onnxruntime 1.32.0 (session_state.cc, VerifyEachNodeIsAssignedToAnEp)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from edgekit_agent.failure import AgentFailure
from edgekit_agent.params import check_params
from edgekit_agent.runtimes.onnx import placement_from_assignment, placement_from_log
from edgekit_agent.runtimes.providers import PROVIDERS, canonical

PREFIX = "2026-12-01 02:39:00.711175383 [V:onnxruntime:, "
CPU_ONLY = "\n".join(
    [
        PREFIX + "session_state.cc:1598 VerifyEachNodeIsAssignedToAnEp] Node placements",
        PREFIX + "session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]  All nodes placed on "
        "[CPUExecutionProvider]. Number of nodes: 10",
        PREFIX + "session_state.cc:1700 SomethingElse] done",
    ]
)
PARTIAL = "\n".join(
    [
        "[V:onnxruntime:, session_state.cc:1598 VerifyEachNodeIsAssignedToAnEp] Node placements",
        "[V:onnxruntime:, session_state.cc:1604 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [ggml]. "
        "Number of nodes: 1",
        "[V:onnxruntime:, session_state.cc:1606 VerifyEachNodeIsAssignedToAnEp]   ggml_3625888950651188847_0 "
        "(ggml_ggml_3625888950651188847_0_0)",
        "[V:onnxruntime:, session_state.cc:1604 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on "
        "[CPUExecutionProvider]. Number of nodes: 1",
        "[V:onnxruntime:, session_state.cc:1606 VerifyEachNodeIsAssignedToAnEp]   Hardmax ()",
        "[W:onnxruntime:, session_state.cc:1618 VerifyEachNodeIsAssignedToAnEp] Some nodes were not assigned "
        "to the preferred execution providers which may or may not have an negative impact on performance. "
        "e.g. ORT explicitly assigns shape related ops to CPU to improve perf.",
    ]
)


def test_log_all_nodes_on_cpu() -> None:
    assert placement_from_log(CPU_ONLY) == {
        "source": "verbose_log",
        "total_nodes": 10,
        "by_provider": {"CPUExecutionProvider": {"nodes": 10, "subgraphs": 10, "op_types": {}}},
        "accelerated_fraction": 0.0,
    }


def test_log_partial_placement_counts_a_compiled_subgraph_once() -> None:
    placement = placement_from_log(PARTIAL)
    assert placement is not None
    assert placement["by_provider"] == {
        "ggml": {"nodes": 1, "subgraphs": 1, "op_types": {"ggml_3625888950651188847_0": 1}},
        "CPUExecutionProvider": {"nodes": 1, "subgraphs": 1, "op_types": {"Hardmax": 1}},
    }
    # a fused node is one node in the log: the share of the original graph is unknown
    assert placement["total_nodes"] == 2 and placement["accelerated_fraction"] is None


def test_log_without_placement_lines() -> None:
    assert placement_from_log("") is None
    assert placement_from_log(PREFIX + "inference_session.cc:1 Initialize] Initializing session.") is None


def test_log_all_nodes_on_an_accelerator_is_exact() -> None:
    text = PARTIAL.split("\n")[1]
    assert placement_from_log(text)["accelerated_fraction"] == 1.0  # type: ignore[index]


def test_assignment_info_partial() -> None:
    placement = placement_from_assignment(
        [("ggml", ["Gemm", "Relu"] * 4 + ["MatMul"]), ("CPUExecutionProvider", ["Hardmax"])]
    )
    assert placement == {
        "source": "assignment_info",
        "total_nodes": 10,
        "by_provider": {
            "ggml": {"nodes": 9, "subgraphs": 1, "op_types": {"Gemm": 4, "Relu": 4, "MatMul": 1}},
            "CPUExecutionProvider": {"nodes": 1, "subgraphs": 1, "op_types": {"Hardmax": 1}},
        },
        "accelerated_fraction": 0.9,
    }
    cpu = placement_from_assignment([("CPUExecutionProvider", ["Conv"])] * 3)
    assert cpu["by_provider"]["CPUExecutionProvider"] == {"nodes": 3, "subgraphs": 3, "op_types": {"Conv": 3}}
    assert cpu["accelerated_fraction"] == 0.0
    assert placement_from_assignment([])["accelerated_fraction"] is None


def test_names_edgekit_and_onnxruntime_spellings() -> None:
    assert canonical("TensorRT") == "tensorrt"
    assert canonical("CUDAExecutionProvider") == "cuda"
    assert canonical("OpenVINOExecutionProvider") == "openvino"
    assert {"cpu", "cuda", "tensorrt", "openvino", "ggml", "qnn", "coreml", "xnnpack"} <= set(PROVIDERS)
    with pytest.raises(AgentFailure) as caught:
        canonical("NoSuchExecutionProvider")
    assert caught.value.error_type == "BadRequest" and caught.value.data == {"param": "providers"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"providers": "cuda"}, "providers"),
        ({"providers": ["cuda", 3]}, "providers"),
        ({"provider_options": {"tensorrt": {"trt_fp16_enable": True}}}, "provider_options"),
        ({"provider_options": {"tensorrt": "fp16"}}, "provider_options"),
        ({"chosen_by": "user"}, "chosen_by"),
    ],
)
def test_provider_params_of_the_wrong_type(params: dict[str, object], param: str) -> None:
    with pytest.raises(AgentFailure) as caught:
        check_params(params)
    assert caught.value.error_type == "BadRequest" and caught.value.data == {"param": param}


def test_provider_params_accepted() -> None:
    check_params(
        {
            "providers": ["tensorrt", "cuda", "cpu"],
            "provider_options": {"tensorrt": {"trt_fp16_enable": "True"}},
            "chosen_by": "profile",
        }
    )
    check_params({"providers": None, "provider_options": None, "chosen_by": None})


@pytest.mark.parametrize("capture", [False, True])
def test_nothing_reaches_stdout_while_a_session_is_created(capture: bool) -> None:
    """onnxruntime print()s "EP Error" and plugins log on fd 1; the bench child's stdout is JSON lines."""
    code = (
        "import os, sys\n"
        "from edgekit_agent.runtimes.onnx import session_fds\n"
        f"with session_fds({capture}) as log:\n"
        "    print('python print'); os.write(1, b'fd one\\n'); os.write(2, b'[W:onnxruntime:, x] kept\\n')\n"
        "print('after', log)\n"
    )
    agents = Path(__file__).resolve().parents[2] / "agents"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(agents)},
        check=True,
    )
    assert done.stdout.decode().startswith("after [")
    assert "python print" in done.stderr.decode() and "fd one" in done.stderr.decode()
    assert "kept" in done.stderr.decode()
    assert ("kept" in done.stdout.decode()) is capture  # the captured log is returned too


# onnxruntime error texts as recorded: ggml 0.2.0's refusal on onnxruntime 1.32.0 (a plugin EP's
# CreateProvider), CUDA's on a Jetson with no GPU visible (GCC's `[with ...]` after the signature),
# a TensorRT one without a source path, and a model error.
RECORDED_ORT_ERRORS = [
    (
        "[ONNXRuntimeError] : 11 : EP_FAIL : /onnxruntime_src/onnxruntime/core/session/plugin_ep/"
        "ep_plugin_provider_interfaces.cc:393 virtual std::unique_ptr<onnxruntime::IExecutionProvider> "
        "onnxruntime::PluginExecutionProviderFactory::CreateProvider(const OrtSessionOptions&, "
        "const OrtLogger&) [ONNXRuntimeError] : 11 : EP_FAIL : ggml: device=gpu requested but no gpu "
        "backend is available\n",
        "EP_FAIL: ggml: device=gpu requested but no gpu backend is available",
    ),
    (
        "[ONNXRuntimeError] : 1 : FAIL : /onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:123 "
        "std::conditional_t<THRW, void, onnxruntime::common::Status> onnxruntime::CudaCall(ERRTYPE, "
        "const char*, const char*, SUCCTYPE, const char*, const char*, int) [with ERRTYPE = cudaError; "
        "bool THRW = true; SUCCTYPE = cudaError; std::conditional_t<THRW, void, onnxruntime::common::Status> "
        "= void] /onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:116 std::conditional_t<THRW, "
        "void, onnxruntime::common::Status> onnxruntime::CudaCall(ERRTYPE, const char*, const char*, "
        "SUCCTYPE, const char*, const char*, int) [with ERRTYPE = cudaError; bool THRW = true; SUCCTYPE = "
        "cudaError; std::conditional_t<THRW, void, onnxruntime::common::Status> = void] CUDA failure 100: "
        "no CUDA-capable device is detected ; GPU=0 ; hostname=jet ; expr=cudaSetDevice(info_.device_id);",
        "FAIL: CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=jet ; "
        "expr=cudaSetDevice(info_.device_id);",
    ),
    (
        "[ONNXRuntimeError] : 1 : FAIL : TensorRT EP failed to create engine from network.",
        "FAIL: TensorRT EP failed to create engine from network.",
    ),
    (
        "[ONNXRuntimeError] : 10 : INVALID_GRAPH : This is an invalid model. Error: two nodes with "
        "same node name (n0).",
        "INVALID_GRAPH: This is an invalid model. Error: two nodes with same node name (n0).",
    ),
]


@pytest.mark.parametrize(("raw", "reason"), RECORDED_ORT_ERRORS)
def test_runtime_reason_drops_source_paths_and_signatures(raw: str, reason: str) -> None:
    from edgekit_agent.failure import runtime_reason

    assert runtime_reason(raw) == reason


def test_options_a_provider_does_not_report_are_ignored() -> None:
    from edgekit_agent.runtimes.onnx import ignored_options

    given = {
        "cpu": {"foo": "1"},
        "ggml": {"partial": "1", "threads": "2"},
        "cuda": {"device_id": "0", "x": "1"},
    }
    taken = {"cpu": {}, "ggml": {"partial": "1", "threads": "2"}, "cuda": {"device_id": "0", "arena": "1"}}
    assert ignored_options(given, taken) == {"cpu": {"foo": "1"}, "cuda": {"x": "1"}}
