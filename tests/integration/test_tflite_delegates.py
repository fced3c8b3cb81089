"""TFLite delegates on the real agent with real .tflite models (tests/data/tflite/README.md):
XNNPACK by default and when asked, `none`, thread counts, partial placement, and external
delegate libraries that cannot load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgekit.lab.sysfs_tree import make_fake_sysfs
from tests.integration.test_agent_protocol import AgentProcess

pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")
pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "tflite"
TINY = Path(__file__).resolve().parents[1] / "fuzz" / "data" / "tiny.tflite"
CNN, CNN_CUMSUM = DATA / "cnn.tflite", DATA / "cnn_cumsum.tflite"
EDGETPU_MODEL = DATA / "edgetpu_custom_op.tflite"
CNN_OPS = {"CONV_2D": 3, "MEAN": 1, "FULLY_CONNECTED": 2}
IMAGE = {"shape": [1, 32, 32, 3], "dtype": "float32"}
INPUTS = {  # the host sends the specs it read from the model
    CNN: {"serving_default_keras_tensor:0": IMAGE},
    CNN_CUMSUM: {"serving_default_keras_tensor_7:0": IMAGE},
    TINY: {"x": {"shape": [1, 8], "dtype": "float32"}},
    EDGETPU_MODEL: {"x": {"shape": [1, 8], "dtype": "float32"}},
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    root = tmp_path_factory.mktemp("tflite-agent")
    process = AgentProcess(make_fake_sysfs(root / "sys", thermal_zones=[("cpu-thermal", 45000)], cpus=2))
    yield process
    process.process.kill()
    process.process.wait()


def bench(agent: AgentProcess, model: Path, **params: Any) -> dict[str, Any]:
    message = {
        "artifact": str(model),
        "inputs": INPUTS.get(model),
        "warmup": 1,
        "runs": 5,
        "min_seconds": 0.0,
        "threads": 1,
        **params,
    }
    reply, _ = agent.request({"id": 1, "op": "bench", "params": message})
    return reply


def runtime_of(agent: AgentProcess, model: Path, **params: Any) -> dict[str, Any]:
    reply = bench(agent, model, **params)
    assert reply["ok"], reply
    return reply["result"]["runtime"]


@pytest.mark.parametrize("delegate", [None, "default", "xnnpack"])
def test_xnnpack_takes_every_node_by_default(agent: AgentProcess, delegate: str | None) -> None:
    runtime = runtime_of(agent, CNN, **({"delegate": delegate} if delegate else {}))
    assert runtime["delegate"] == {
        "requested": delegate or "default",
        "applied": ["xnnpack"],
        "default_applied": True,
        "threads": 1,
    }
    assert runtime["placement"] == {
        "source": "tflite_ops",
        "total_nodes": 6,
        "by_provider": {"xnnpack": {"nodes": 6, "subgraphs": 1, "op_types": CNN_OPS}},
        "accelerated_fraction": 1.0,
    }


def test_none_runs_every_node_on_the_builtin_kernels(agent: AgentProcess) -> None:
    runtime = runtime_of(agent, CNN, delegate="none")
    assert runtime["delegate"] == {"requested": "none", "applied": [], "default_applied": False, "threads": 1}
    placement = runtime["placement"]
    assert placement["by_provider"] == {"cpu": {"nodes": 6, "subgraphs": 6, "op_types": CNN_OPS}}
    assert placement["accelerated_fraction"] == 0.0


def test_tiny_model_default_and_none(agent: AgentProcess) -> None:
    default = runtime_of(agent, TINY)["placement"]["by_provider"]
    assert default == {"xnnpack": {"nodes": 1, "subgraphs": 1, "op_types": {"FULLY_CONNECTED": 1}}}
    none = runtime_of(agent, TINY, delegate="none")["placement"]["by_provider"]
    assert none == {"cpu": {"nodes": 1, "subgraphs": 1, "op_types": {"FULLY_CONNECTED": 1}}}


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_pass_through(agent: AgentProcess, threads: int) -> None:
    runtime = runtime_of(agent, CNN, threads=threads, delegate="xnnpack")
    assert runtime["threads"] == threads and runtime["delegate"]["threads"] == threads
    assert runtime["delegate"]["applied"] == ["xnnpack"]


def test_an_op_xnnpack_does_not_take_stays_on_the_cpu(agent: AgentProcess) -> None:
    runtime = runtime_of(agent, CNN_CUMSUM)
    placement = runtime["placement"]
    assert placement["by_provider"]["cpu"] == {"nodes": 1, "subgraphs": 1, "op_types": {"CUMSUM": 1}}
    assert placement["by_provider"]["xnnpack"]["op_types"] == CNN_OPS
    assert placement["total_nodes"] == 7 and placement["accelerated_fraction"] == pytest.approx(6 / 7)
    assert runtime["delegate"]["default_applied"] is True


def test_a_missing_delegate_library_is_named(agent: AgentProcess, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "libmydelegate.so"
    reply = bench(agent, CNN, delegate=str(missing))
    assert not reply["ok"]
    error = reply["error"]
    assert error["type"] == "DelegateMissing"
    assert str(missing) in error["message"] and "cannot open shared object file" in error["message"]
    assert error["data"]["library"] == str(missing)
    assert "\n" not in error["message"]


def test_edgetpu_without_libedgetpu_says_how_to_install(agent: AgentProcess) -> None:
    reply = bench(agent, CNN, delegate="edgetpu", delegate_options={"device": "usb:0"})
    assert reply["error"]["type"] == "DelegateMissing"
    assert "libedgetpu.so.1" in reply["error"]["message"]
    assert "apt-get install libedgetpu1-std" in reply["error"]["message"]


def test_an_edge_tpu_model_without_the_delegate_says_so(agent: AgentProcess) -> None:
    reply = bench(agent, EDGETPU_MODEL)
    assert reply["error"]["type"] == "ModelLoadError"
    assert "compiled for the Coral Edge TPU" in reply["error"]["message"]
    assert "delegate edgetpu (libedgetpu.so.1)" in reply["error"]["message"]


def test_a_library_that_is_not_a_delegate(agent: AgentProcess) -> None:
    reply = bench(agent, CNN, delegate="libm.so.6")
    assert reply["error"]["type"] == "DelegateMissing"
    assert "libm.so.6" in reply["error"]["message"]
    assert "tflite_plugin_create_delegate" in reply["error"]["message"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"delegate": 3}, "delegate"),
        ({"delegate": ""}, "delegate"),
        ({"delegate_options": {"device": 0}}, "delegate_options"),
        ({"delegate_options": ["device"]}, "delegate_options"),
        ({"delegate": "none", "delegate_options": {"device": "usb"}}, "delegate_options"),
    ],
)
def test_bad_delegate_params_are_bad_requests(
    agent: AgentProcess, params: dict[str, Any], param: str
) -> None:
    reply = bench(agent, CNN, **params)
    assert reply["error"]["type"] == "BadRequest" and reply["error"]["data"]["param"] == param


def test_a_delegate_for_an_onnx_model_is_a_bad_request(agent: AgentProcess, mlp_model: Path) -> None:
    reply = bench(agent, mlp_model, delegate="xnnpack")
    assert reply["error"]["type"] == "BadRequest" and "TFLite" in reply["error"]["message"]


def test_the_host_reports_a_missing_delegate_as_a_device_error(tmp_path: Path) -> None:
    """Through the host's agent client on the real local transport: exit 3, naming the library."""
    from edgekit.core.errors import DeviceError
    from edgekit.transport.agent_client import agent_session
    from edgekit.transport.local import LocalTransport

    missing = tmp_path / "libmissing_delegate.so"
    transport = LocalTransport(sysfs_root=make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu", 41000)]))
    params = {"artifact": str(TINY), "inputs": INPUTS[TINY], "runs": 2, "warmup": 0, "min_seconds": 0.0}
    with pytest.raises(DeviceError) as caught, agent_session(transport) as client:
        client.bench({**params, "delegate": str(missing)})
    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert "DelegateMissing" in message and str(missing) in message and "\n" not in message


def test_a_failed_load_leaves_no_noise_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_delegate's half-made Delegate fails in __del__; that must not reach stderr."""
    import gc

    from ai_edge_litert.interpreter import load_delegate
    from edgekit_agent.failure import AgentFailure
    from edgekit_agent.runtimes.tflite import load_external

    seen: list[Any] = []
    monkeypatch.setattr("sys.unraisablehook", seen.append)
    for library in ("/nonexistent/libdelegate.so", "libm.so.6"):
        with pytest.raises(AgentFailure):
            load_external(library, {}, load_delegate)
    gc.collect()
    assert seen == []


@pytest.mark.parametrize(
    ("params", "chosen_by"),
    [
        ({}, "default"),
        ({"delegate": "none"}, "explicit"),
        ({"delegate": "xnnpack", "chosen_by": "profile"}, "profile"),
    ],
)
def test_the_reply_echoes_chosen_by(agent: AgentProcess, params: dict[str, Any], chosen_by: str) -> None:
    runtime = runtime_of(agent, CNN, **params)
    assert runtime["chosen_by"] == chosen_by
    assert runtime["delegate"]["requested"] == params.get("delegate", "default")


def test_a_profile_delegate_that_does_not_load_falls_back_to_the_default(
    agent: AgentProcess, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "libmydelegate.so"
    runtime = runtime_of(agent, CNN, delegate=str(missing), chosen_by="profile")
    assert runtime["chosen_by"] == "profile"
    assert runtime["delegate"]["requested"] == "default" and runtime["delegate"]["applied"] == ["xnnpack"]
    assert str(missing) in runtime["delegate"]["fallback_reason"]


def test_provider_params_for_a_tflite_model_are_a_bad_request(agent: AgentProcess) -> None:
    reply = bench(agent, CNN, providers=["cpu"])
    assert reply["error"]["type"] == "BadRequest" and reply["error"]["data"]["param"] == "providers"
    assert "ONNX" in reply["error"]["message"]
