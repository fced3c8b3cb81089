"""onnxruntime execution providers through the real agent (runtimes/providers.py, runtimes/onnx.py):
real placement on the CPU EP, a real plugin EP (onnxruntime-ggml, the test stand-in for OpenVINO's
plugin EP, which offers no device on a non-Intel CPU) with full and partial placement, providers
this machine lacks (ProviderMissing with the install line) and unknown names (BadRequest, nothing
but JSON lines on the agent's stdout)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from edgekit.lab.sysfs_tree import make_fake_sysfs
from tests.integration.test_agent_protocol import AgentProcess

pytestmark = pytest.mark.integration

DIGITS = Path(__file__).resolve().parents[2] / "edgekit" / "data" / "demo_digits.onnx"
HAS_GGML = importlib.util.find_spec("onnxruntime_ggml") is not None
needs_ggml = pytest.mark.skipif(not HAS_GGML, reason="onnxruntime-ggml not installed (scripts/test)")
DIGITS_INPUTS = {"input": {"shape": [1, 1, 8, 8], "dtype": "float32"}}
MLP_INPUTS = {"x": {"shape": [8, 32], "dtype": "float32"}}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    root = tmp_path_factory.mktemp("providers")
    sysfs = make_fake_sysfs(
        root / "sys", thermal_zones=[("cpu-thermal", 48312)], cpus=2, governor="schedutil"
    )
    process = AgentProcess(sysfs, env={"ORT_GGML_LOG": "warn"})
    yield process
    process.process.kill()
    process.process.wait()


def mlp(path: Path, tail: str | None = None) -> Path:
    """4 x (MatMul+Add+Relu) and a MatMul (ggml takes all of it); `tail`: one more op at the end
    (Hardmax: ggml lacks it, so with partial=1 it takes the 9 nodes before it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, x, width = [], [], "x", 32
    for i in range(4):
        inits += [
            numpy_helper.from_array((rng.standard_normal((width, 64)) * 0.05).astype(np.float32), f"w{i}"),
            numpy_helper.from_array(np.zeros(64, np.float32), f"b{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
            helper.make_node("Relu", [f"a{i}"], [f"r{i}"]),
        ]
        x, width = f"r{i}", 64
    inits.append(numpy_helper.from_array((rng.standard_normal((64, 10)) * 0.05).astype(np.float32), "wo"))
    nodes.append(helper.make_node("MatMul", [x, "wo"], ["logits"]))
    out = "logits"
    if tail:
        nodes.append(helper.make_node(tail, [out], ["y"]))
        out = "y"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 32])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [8, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"mlp": mlp(root / "mlp.onnx"), "hardmax": mlp(root / "mlp_hardmax.onnx", "Hardmax")}


def bench(agent: AgentProcess, artifact: Path, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    params = {"artifact": str(artifact), "inputs": inputs, "warmup": 1, "runs": 3, "min_seconds": 0.0}
    reply, _ = agent.request({"id": 1, "op": "bench", "params": {**params, "threads": 1, **extra}})
    return reply


def bench_in_own_agent(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """The demo model benched by an agent of its own, started with `env`."""
    sysfs = make_fake_sysfs(
        tmp_path / "sys", thermal_zones=[("cpu-thermal", 48312)], cpus=2, governor="schedutil"
    )
    process = AgentProcess(sysfs, env=env)
    try:
        return bench(process, DIGITS, DIGITS_INPUTS)
    finally:
        process.process.kill()
        process.process.wait()


def test_cpu_placement_of_the_demo_model(agent: AgentProcess) -> None:
    reply = bench(agent, DIGITS, DIGITS_INPUTS, providers=["cpu"])
    assert reply["ok"], reply
    runtime = reply["result"]["runtime"]
    assert runtime["requested_providers"] == ["cpu"] and runtime["chosen_by"] == "explicit"
    assert runtime["providers"] == ["CPUExecutionProvider"]
    assert runtime["provider_versions"] == {"onnxruntime": ort.__version__}
    assert runtime["placement"] == {
        "source": "assignment_info",
        "total_nodes": 10,
        "by_provider": {
            "CPUExecutionProvider": {
                "nodes": 10,
                "subgraphs": 10,
                "op_types": {
                    "Conv": 3,
                    "Relu": 3,
                    "MaxPool": 1,
                    "GlobalAveragePool": 1,
                    "Flatten": 1,
                    "Gemm": 1,
                },
            }
        },
        "accelerated_fraction": 0.0,
    }


def test_cpu_placement_from_the_verbose_log(tmp_path: Path) -> None:
    """The fallback for onnxruntime < 1.24: the verbose log captured on fd 2 of the bench child."""
    reply = bench_in_own_agent(tmp_path, {"EDGEKIT_AGENT_TEST_PLACEMENT_LOG": "1"})
    assert reply["ok"], reply
    placement = reply["result"]["runtime"]["placement"]
    assert placement["source"] == "verbose_log"
    assert list(placement["by_provider"]) == ["CPUExecutionProvider"]
    assert placement["total_nodes"] > 0 and placement["accelerated_fraction"] == 0.0


@needs_ggml
def test_plugin_provider_takes_the_whole_graph(agent: AgentProcess, models: dict[str, Path]) -> None:
    reply = bench(
        agent, models["mlp"], MLP_INPUTS, providers=["ggml"], provider_options={"ggml": {"threads": "1"}}
    )
    assert reply["ok"], reply
    runtime = reply["result"]["runtime"]
    assert runtime["placement"]["by_provider"] == {
        "ggml": {"nodes": 9, "subgraphs": 1, "op_types": {"Gemm": 4, "Relu": 4, "MatMul": 1}}
    }
    assert runtime["placement"]["accelerated_fraction"] == 1.0
    assert runtime["provider_options"]["ggml"]["threads"] == "1"
    assert runtime["provider_versions"]["onnxruntime-ggml"] == "0.2.0"


@needs_ggml
def test_plugin_provider_partial_placement(agent: AgentProcess, models: dict[str, Path]) -> None:
    reply = bench(
        agent, models["hardmax"], MLP_INPUTS, providers=["ggml"], provider_options={"ggml": {"partial": "1"}}
    )
    assert reply["ok"], reply
    placement = reply["result"]["runtime"]["placement"]
    assert placement["by_provider"]["CPUExecutionProvider"] == {
        "nodes": 1,
        "subgraphs": 1,
        "op_types": {"Hardmax": 1},
    }
    assert placement["by_provider"]["ggml"]["nodes"] == 9
    assert placement["total_nodes"] == 10 and placement["accelerated_fraction"] == 0.9
    # ggml reports `partial` back: applied, not ignored
    runtime = reply["result"]["runtime"]
    assert runtime["provider_options"]["ggml"]["partial"] == "1"
    assert runtime["ignored_provider_options"] == {}


def test_an_option_the_provider_does_not_take_is_not_recorded_as_applied(agent: AgentProcess) -> None:
    reply = bench(agent, DIGITS, DIGITS_INPUTS, providers=["cpu"], provider_options={"cpu": {"foo": "1"}})
    assert reply["ok"], reply
    runtime = reply["result"]["runtime"]
    assert "cpu" not in runtime["provider_options"]
    assert runtime["ignored_provider_options"] == {"cpu": {"foo": "1"}}


@needs_ggml
def test_a_provider_refusing_the_session_is_provider_failed(
    agent: AgentProcess, models: dict[str, Path]
) -> None:
    reply = bench(
        agent, models["mlp"], MLP_INPUTS, providers=["ggml"], provider_options={"ggml": {"device": "gpu"}}
    )
    assert not reply["ok"]
    error = reply["error"]
    assert error["type"] == "ProviderFailed" and error["data"]["provider"] == "ggml", error
    assert "ggml: device=gpu requested but no gpu backend is available" in error["message"]
    assert ".cc:" not in error["message"] and "onnxruntime::" not in error["message"]
    assert "\n" not in error["message"]


@needs_ggml
def test_a_model_the_cpu_refuses_too_stays_a_model_load_error(agent: AgentProcess, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    reply = bench(agent, broken, MLP_INPUTS, providers=["ggml"])
    assert not reply["ok"]
    assert reply["error"]["type"] == "ModelLoadError", reply["error"]


@needs_ggml
def test_plugin_provider_listed_but_given_nothing(agent: AgentProcess, models: dict[str, Path]) -> None:
    """get_providers() names ggml, yet every node ran on the CPU: the placement says so."""
    reply = bench(agent, models["hardmax"], MLP_INPUTS, providers=["ggml"])
    assert reply["ok"], reply
    runtime = reply["result"]["runtime"]
    assert "ggml" in runtime["providers"]
    assert list(runtime["placement"]["by_provider"]) == ["CPUExecutionProvider"]
    assert runtime["placement"]["accelerated_fraction"] == 0.0


def test_cold_start_split_from_the_profile(tmp_path: Path) -> None:
    """session_load and session_init come from onnxruntime's profile, ended after the first
    inference; the profile file and its directory are deleted (TMPDIR stays empty)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    reply = bench_in_own_agent(tmp_path, {"TMPDIR": str(tmp)})
    assert reply["ok"], reply
    cold = reply["result"]["cold_start_ms"]
    assert set(cold) == {"load", "first_inference", "session_load", "session_init"}
    assert cold["session_load"] > 0 and cold["session_init"] > 0
    assert cold["session_load"] + cold["session_init"] <= cold["load"]
    assert reply["result"]["runtime"]["engine_cache"] is None
    assert list(tmp.iterdir()) == []


def openvino_device() -> str | None:
    """None when the OpenVINO plugin EP offers a device here; else why not (the skip reason):
    onnxruntime-ep-openvino is not installed, or it registers and offers no device (a non-Intel
    CPU, get_ep_devices). Any other failure (its library does not load) raises: a real fault."""
    from edgekit_agent.failure import AgentFailure
    from edgekit_agent.runtimes.providers import PROVIDERS, resolve_one

    if importlib.util.find_spec("onnxruntime_ep_openvino") is None:
        return "onnxruntime-ep-openvino is not installed"
    try:
        resolve_one(ort, PROVIDERS["openvino"])  # registers the plugin, reads get_ep_devices
    except AgentFailure as failure:
        if "offers no device" in failure.message:
            return failure.message
        raise
    return None


def with_tail(path: Path, model: Path) -> Path:
    """`model` with ai.onnx.ml Binarizer appended (an ONNX-ML operator OpenVINO does not take;
    onnxruntime's CPU provider does), so the graph is partial with the CPU part LAST."""
    import onnx
    from onnx import helper

    proto = onnx.load(str(model))
    out = proto.graph.output[0]
    proto.graph.node.append(
        helper.make_node("Binarizer", [out.name], ["y"], domain="ai.onnx.ml", threshold=0.0)
    )
    out.name = "y"
    proto.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    onnx.save(proto, str(path))
    return path


def test_openvino_bench_full_and_partial(
    agent: AgentProcess, models: dict[str, Path], tmp_path: Path
) -> None:
    """Intel hosts: a real bench on the OpenVINO plugin EP, its nodes placed on it, and a model
    whose last operator OpenVINO does not take reported as partial."""
    reason = openvino_device()
    if reason is not None:
        pytest.skip(f"no OpenVINO device: {reason}")
    reply = bench(agent, models["mlp"], MLP_INPUTS, providers=["openvino"])
    assert reply["ok"], reply
    runtime = reply["result"]["runtime"]
    assert runtime["requested_providers"] == ["openvino"]
    assert runtime["placement"]["by_provider"]["OpenVINOExecutionProvider"]["nodes"] > 0
    assert runtime["provider_versions"].get("onnxruntime-ep-openvino")
    reply = bench(
        agent, with_tail(tmp_path / "mlp_binarizer.onnx", models["mlp"]), MLP_INPUTS, providers=["openvino"]
    )
    assert reply["ok"], reply
    placement = reply["result"]["runtime"]["placement"]
    assert placement["by_provider"]["OpenVINOExecutionProvider"]["nodes"] > 0
    assert placement["by_provider"]["CPUExecutionProvider"]["op_types"].get("Binarizer") == 1
    assert 0 < placement["accelerated_fraction"] < 1


@pytest.mark.parametrize(
    ("name", "install"),
    [
        ("cuda", "pip install onnxruntime-gpu"),
        ("tensorrt", "pip install onnxruntime-gpu tensorrt"),
        ("openvino", "pip install onnxruntime-ep-openvino"),
    ],
)
def test_missing_provider(agent: AgentProcess, name: str, install: str) -> None:
    if (
        name in ("cuda", "tensorrt")
        and f"{name.upper()}ExecutionProvider".replace("TENSORRT", "Tensorrt")
        in ort.get_available_providers()
    ):
        pytest.skip(f"{name} is installed here")
    if name == "openvino" and any(d.ep_name == "OpenVINOExecutionProvider" for d in ort.get_ep_devices()):
        pytest.skip("OpenVINO has a device here")
    reply = bench(agent, DIGITS, DIGITS_INPUTS, providers=[name, "cpu"])
    assert not reply["ok"]
    error = reply["error"]
    assert error["type"] == "ProviderMissing", error
    assert error["data"]["provider"] == name and install in error["data"]["install"]
    assert "\n" not in error["message"]
    if name == "openvino" and importlib.util.find_spec("onnxruntime_ep_openvino"):
        # installed, no device (not an Intel CPU): installing it again would not help
        assert "offers no device" in error["message"] and "install:" not in error["message"]
    else:
        assert install in error["message"]
    if name == "cuda" and HAS_GGML:  # installed plugin EPs are listed as available too
        assert "ggml (plugin)" in error["message"]


def test_missing_provider_from_a_profile_is_dropped(agent: AgentProcess) -> None:
    reply = bench(
        agent,
        DIGITS,
        DIGITS_INPUTS,
        providers=["tensorrt", "cuda"],
        chosen_by="profile",
    )
    assert reply["ok"], reply
    runtime = reply["result"]["runtime"]
    assert runtime["requested_providers"] == ["tensorrt", "cuda"] and runtime["chosen_by"] == "profile"
    assert list(runtime["placement"]["by_provider"]) == ["CPUExecutionProvider"]


def test_unknown_provider_is_a_bad_request_with_a_clean_stdout(agent: AgentProcess) -> None:
    for names in (["NoSuchExecutionProvider"], ["cpu", "nosuch"]):
        reply = bench(agent, DIGITS, DIGITS_INPUTS, providers=names)
        assert reply["error"]["type"] == "BadRequest" and reply["error"]["data"] == {"param": "providers"}
    reply = bench(agent, DIGITS, DIGITS_INPUTS, provider_options={"nosuch": {}})
    assert reply["error"]["type"] == "BadRequest"
    # the next line on stdout is the reply to the next request: nothing was printed in between
    agent.send_raw(b'{"id": 9, "op": "bye"}\n')
    assert agent.process.stdout is not None
    rest = agent.process.stdout.read().decode().splitlines()
    assert [json.loads(line)["id"] for line in rest] == [9]
