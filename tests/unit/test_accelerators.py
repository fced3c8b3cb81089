"""Accelerators on the host: the flags and the profile's [accelerators] table become the bench
params of the reply contract (docs/protocol.md), and agent replies carrying placement, delegates
and engine caches become results (runtime, cold start split, fingerprint, min_accelerated_fraction,
the placement line). Replies here are shaped as the agent sends them (the contract's examples)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgekit.cli.output import engine_cache_line, placement_line, providers_cell, result_table
from edgekit.core.accelerators import AcceleratorRequest, accelerator_params
from edgekit.core.errors import ConfigError, DeviceError, UsageError
from edgekit.core.profiles import (
    DeviceProfile,
    load_profile,
    parse_budget_overrides,
)
from edgekit.core.result import Result
from edgekit.data import demo_model_path
from edgekit.judge.fingerprint import build_fingerprint, differences, fingerprint_hash
from edgekit.measure.bench import (
    BenchOptions,
    StagedModel,
    bench_params,
    build_result,
    check_accelerators_applied,
    prepare_model,
)
from edgekit.transport.board import Board
from edgekit.transport.devices import Device
from tests.fake_board import fake_profile
from tests.results import V1_DIR

GGML_PARTIAL = {
    "source": "assignment_info",
    "total_nodes": 10,
    "by_provider": {
        "ggml": {"nodes": 9, "subgraphs": 1, "op_types": {"Gemm": 4, "Relu": 4, "MatMul": 1}},
        "CPUExecutionProvider": {"nodes": 1, "subgraphs": 1, "op_types": {"Hardmax": 1}},
    },
    "accelerated_fraction": 0.9,
}
ONNX_RUNTIME = {
    "name": "onnxruntime",
    "version": "1.32.0",
    "threads": 1,
    "providers": ["ggml", "CPUExecutionProvider"],
    "requested_providers": ["ggml", "cpu"],
    "provider_options": {"ggml": {"threads": "1", "partial": "1"}},
    "provider_versions": {"onnxruntime-ggml": "0.2.0"},
    "chosen_by": "explicit",
    "placement": GGML_PARTIAL,
}
TENSORRT_RUNTIME = {
    **ONNX_RUNTIME,
    "providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "requested_providers": ["tensorrt", "cuda", "cpu"],
    "provider_options": {
        "tensorrt": {
            "trt_fp16_enable": "True",
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": "trt-cache/ab12cd34ef56ab12-trt10.3.0-0a1b2c3d",
        }
    },
    "provider_versions": {"tensorrt": "10.3.0", "onnxruntime-gpu": "1.20.0"},
    "chosen_by": "profile",
    "placement": {
        "source": "verbose_log",
        "total_nodes": 10,
        "by_provider": {
            "TensorrtExecutionProvider": {"nodes": 10, "subgraphs": 1, "op_types": None},
            "CUDAExecutionProvider": {"nodes": 0, "subgraphs": 0, "op_types": {}},
        },
        "accelerated_fraction": 1.0,
    },
    "engine_cache": {"dir": "trt-cache/ab12cd34ef56ab12-trt10.3.0-0a1b2c3d", "hit": True, "size_bytes": 123},
}
TFLITE_RUNTIME = {
    "name": "ai_edge_litert",
    "version": "2.3.0",
    "threads": 1,
    "chosen_by": "default",
    "delegate": {"requested": "default", "applied": ["xnnpack"], "default_applied": True, "threads": 1},
    "placement": {
        "source": "tflite_ops",
        "total_nodes": 8,
        "by_provider": {
            "xnnpack": {
                "nodes": 7,
                "subgraphs": 1,
                "op_types": {"CONV_2D": 4, "MEAN": 1, "FULLY_CONNECTED": 2},
            },
            "cpu": {"nodes": 1, "subgraphs": None, "op_types": {"CUMSUM": 1}},
        },
        "accelerated_fraction": 0.875,
    },
}


def profile(tmp_path: Path, accelerators: dict[str, Any] | None = None, **budgets: float) -> DeviceProfile:
    return fake_profile(tmp_path, [], {"latency_p50_ms": 100.0, **budgets}, accelerators)


def board(chosen: DeviceProfile) -> Board:
    return Board.of(Device(name="board", profile=chosen.name, kind="local"), chosen)


def reply(runtime: dict[str, Any], cold: dict[str, Any] | None = None) -> dict[str, Any]:
    """A bench reply as the agent sends it, with the contract's runtime section."""
    return {
        "latencies_ns": [1_000_000 + 1000 * (i % 7) for i in range(40)],
        "runtime": copy.deepcopy(runtime),
        "cold_start_ms": cold or {"load": 64.7, "first_inference": 0.99},
        "memory": {"peak_rss_bytes": 50 << 20, "baseline_rss_bytes": 30 << 20, "source": "procfs:VmHWM"},
    }


def result_of(chosen: DeviceProfile, raw: dict[str, Any], model: Path | None = None) -> Result:
    options = BenchOptions(runs=40, min_seconds=0.0)
    prepared = prepare_model(model or demo_model_path(), options)
    hello = {"agent_version": "test", "facts": {"machine": "x86_64", "cores": 2, "python": "3.11.7"}}
    return build_result(
        board=board(chosen), hello=hello, prepared=prepared, raw=raw, options=options, transfer={}
    )


def params_for(
    chosen: DeviceProfile, request: AcceleratorRequest, model: Path | None = None
) -> dict[str, Any]:
    options = BenchOptions(accelerators=request)
    prepared = prepare_model(model or demo_model_path(), options)
    return bench_params(StagedModel("/w/m.onnx", None, {}), prepared, board(chosen), options)


# --- the flags and the profile -> bench params ------------------------------------------------


def test_explicit_providers_reach_the_params_in_order_with_their_options(tmp_path: Path) -> None:
    chosen = profile(tmp_path, {"providers": ["tensorrt", "cpu"]})
    request = AcceleratorRequest(
        providers=("OpenVINO", "cpu"), provider_options=("device_type=CPU", "cpu.arena=0")
    )
    params = params_for(chosen, request)
    assert params["providers"] == ["openvino", "cpu"]
    assert params["provider_options"] == {"openvino": {"device_type": "CPU"}, "cpu": {"arena": "0"}}
    assert params["chosen_by"] == "explicit"
    assert params["delegate"] is None and params["delegate_options"] is None
    assert params["fresh_engine"] is False
    assert params_for(chosen, AcceleratorRequest(fresh_engine=True))["fresh_engine"] is True


def test_without_provider_the_profile_list_is_sent_as_a_preference(tmp_path: Path) -> None:
    chosen = profile(
        tmp_path,
        {
            "providers": ["tensorrt", "cuda", "cpu"],
            "provider_options": {"tensorrt": {"trt_fp16_enable": "True"}},
        },
    )
    params = params_for(chosen, AcceleratorRequest(provider_options=("tensorrt.trt_dla_enable=False",)))
    assert params["providers"] == ["tensorrt", "cuda", "cpu"]
    assert params["provider_options"] == {"tensorrt": {"trt_fp16_enable": "True", "trt_dla_enable": "False"}}
    assert params["chosen_by"] == "profile"
    # no profile list and no flag: the runtime's default (CPU), said so
    assert params_for(profile(tmp_path), AcceleratorRequest())["chosen_by"] == "default"
    assert params_for(profile(tmp_path), AcceleratorRequest())["providers"] is None


def test_the_jetson_profiles_prefer_tensorrt_then_cuda_then_cpu() -> None:
    for name in ("jetson-orin-nano", "jetson-nano"):
        assert load_profile(name).accelerators.providers == ("tensorrt", "cuda", "cpu")
    assert load_profile("local").accelerators.providers == ()


def test_tflite_delegate_and_options_reach_the_params(tmp_path: Path) -> None:
    tiny = Path(__file__).resolve().parent.parent / "fuzz" / "data" / "tiny.tflite"
    chosen = profile(tmp_path, {"delegate": "gpu", "delegate_options": {"precision": "fp16"}})
    params = params_for(chosen, AcceleratorRequest(), tiny)
    assert (params["delegate"], params["delegate_options"], params["chosen_by"]) == (
        "gpu",
        {"precision": "fp16"},
        "profile",
    )
    params = params_for(chosen, AcceleratorRequest(delegate="None"), tiny)
    assert (params["delegate"], params["delegate_options"], params["chosen_by"]) == ("none", None, "explicit")
    path = "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1"
    params = params_for(chosen, AcceleratorRequest(delegate=path, delegate_options=("device=usb:0",)), tiny)
    assert (params["delegate"], params["delegate_options"]) == (path, {"device": "usb:0"})
    assert params["providers"] is None


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (AcceleratorRequest(delegate_options=("num_threads",)), "expected KEY=VALUE"),
        (AcceleratorRequest(delegate="xnnpak"), "did you mean 'xnnpack'"),
        (AcceleratorRequest(delegate="none", delegate_options=("a=b",)), "not to 'none'"),
        (AcceleratorRequest(providers=("cuda", "cuda")), "given twice"),
        (AcceleratorRequest(providers=("cu da",)), "unknown execution provider"),
        (
            AcceleratorRequest(providers=("cuda",), provider_options=("tensorrt.x=1",)),
            "add --provider tensorrt",
        ),
        (AcceleratorRequest(provider_options=("=1",)), "expected KEY=VALUE"),
    ],
)
def test_malformed_accelerator_flags_are_usage_errors(request_: AcceleratorRequest, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        request_.validate()


def test_provider_options_with_no_provider_in_effect_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="name one with --provider"):
        accelerator_params(
            AcceleratorRequest(provider_options=("a=1",)), profile(tmp_path).accelerators.prefs(), "onnx"
        )


def test_a_flag_of_the_other_runtime_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="TFLite models"):
        params_for(profile(tmp_path), AcceleratorRequest(delegate="xnnpack"))


@pytest.mark.parametrize(
    ("accelerators", "key"),
    [
        ({"providers": ["tensorrt"], "provider_options": {"cuda": {"device_id": "0"}}}, "provider_options"),
        ({"providers": ["tensor rt"]}, "providers"),
        ({"delegate": "gpuu"}, "delegate"),
        ({"providers": ["cpu"], "threads": 2}, "threads"),
        ({"provider_options": {"cpu": {"arena": 0}}}, "provider_options"),
    ],
)
def test_a_bad_accelerators_table_is_a_config_error(
    tmp_path: Path, accelerators: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        profile(tmp_path, accelerators)


# --- replies -> results -----------------------------------------------------------------------


def test_partial_placement_is_kept_shown_and_budgeted(tmp_path: Path) -> None:
    chosen = profile(tmp_path, min_accelerated_fraction=0.95)
    result = result_of(
        chosen,
        reply(
            ONNX_RUNTIME, {"load": 64.7, "first_inference": 0.99, "session_load": 14.4, "session_init": 40.2}
        ),
    )
    runtime = result.runtime
    assert runtime is not None and runtime.placement is not None
    assert runtime.placement.by_provider is not None
    assert runtime.placement.by_provider["CPUExecutionProvider"].op_types == {"Hardmax": 1}
    assert runtime.requested_providers == ["ggml", "cpu"] and runtime.chosen_by == "explicit"
    assert result.cold_start_ms is not None and result.cold_start_ms.session_init == 40.2
    check = {c.metric: c for c in result.budget.checks}["min_accelerated_fraction"]
    assert (check.value, check.verdict) == (0.9, "fail")  # 0.9 < 0.95
    assert result.budget.verdict == "fail"
    assert placement_line(runtime) == "placement: ggml 9/10 nodes (90%), CPU: Hardmax"
    assert providers_cell(runtime) == "ggml,cpu → ggml 9/10, cpu 1/10"  # fleet and history tables
    assert result.fingerprint is not None
    assert result.fingerprint.providers_used == ["CPUExecutionProvider", "ggml"]
    assert result.fingerprint.accelerated_fraction == 0.9
    again = Result.model_validate(result.to_dict())
    assert again.to_dict() == result.to_dict()


def test_the_fraction_budget_passes_at_or_above_its_limit(tmp_path: Path) -> None:
    for limit, verdict in ((0.9, "pass"), (0.5, "pass"), (0.91, "fail")):
        result = result_of(profile(tmp_path, min_accelerated_fraction=limit), reply(ONNX_RUNTIME))
        assert {c.metric: c.verdict for c in result.budget.checks}["min_accelerated_fraction"] == verdict


def test_the_fraction_budget_is_unknown_without_placement(tmp_path: Path) -> None:
    old_agent = {
        "name": "onnxruntime",
        "version": "1.32.0",
        "threads": 1,
        "providers": ["CPUExecutionProvider"],
    }
    result = result_of(profile(tmp_path, min_accelerated_fraction=0.5), reply(old_agent))
    check = {c.metric: c for c in result.budget.checks}["min_accelerated_fraction"]
    assert check.verdict == "unknown" and "placement" in (check.reason or "")
    # without the budget, a run with no placement shows no fraction row
    plain = result_of(profile(tmp_path), reply(old_agent))
    metrics = result_table(plain).columns[0]._cells
    assert "min_accelerated_fraction" not in metrics and "latency_p50_ms" in metrics
    assert placement_line(plain.runtime) is None


def test_budget_overrides_take_the_fraction_and_refuse_more_than_one() -> None:
    assert parse_budget_overrides(["min_accelerated_fraction=0.8"]) == {"min_accelerated_fraction": 0.8}
    with pytest.raises(UsageError, match="between 0 and 1"):
        parse_budget_overrides(["min_accelerated_fraction=80"])


def test_engine_cache_hit_and_verbose_log_placement(tmp_path: Path) -> None:
    result = result_of(profile(tmp_path), reply(TENSORRT_RUNTIME))
    runtime = result.runtime
    assert runtime is not None and runtime.engine_cache is not None and runtime.engine_cache.hit is True
    line = placement_line(runtime)
    assert line is not None and line.startswith("placement: Tensorrt 10/10 nodes (100%)")
    assert "approximate" in line and "CUDA" not in line  # 0 nodes: not shown as used
    cache = "TensorRT engine: from the cache (trt-cache/ab12cd34ef56ab12-trt10.3.0-0a1b2c3d, 0.0 MiB)"
    assert engine_cache_line(runtime) == cache
    built = runtime.model_copy(
        update={"engine_cache": runtime.engine_cache.model_copy(update={"hit": False, "evicted": 2})}
    )
    assert engine_cache_line(built) == (
        "TensorRT engine: built now and cached (--fresh-engine rebuilds it) "
        "(trt-cache/ab12cd34ef56ab12-trt10.3.0-0a1b2c3d, 0.0 MiB); 2 older engine(s) evicted"
    )
    assert engine_cache_line(result_of(profile(tmp_path), reply(ONNX_RUNTIME)).runtime) is None
    assert result.fingerprint is not None
    assert result.fingerprint.providers_used == ["TensorrtExecutionProvider"]
    # the cache path is where the engine lives on the board, not a condition
    assert result.fingerprint.provider_options == {
        "tensorrt": {"trt_engine_cache_enable": "True", "trt_fp16_enable": "True"}
    }


def test_tflite_delegate_reply(tmp_path: Path) -> None:
    tiny = Path(__file__).resolve().parent.parent / "fuzz" / "data" / "tiny.tflite"
    result = result_of(profile(tmp_path), reply(TFLITE_RUNTIME), tiny)
    runtime = result.runtime
    assert runtime is not None and runtime.delegate is not None and runtime.delegate.default_applied is True
    assert placement_line(runtime) == (
        "placement: xnnpack 7/8 nodes (88%), CPU: CUMSUM (the interpreter's default delegate)"
    )
    assert providers_cell(runtime) == "default → xnnpack"
    explicit = runtime.model_copy(
        update={
            "delegate": runtime.delegate.model_copy(update={"requested": "xnnpack"}),
            "chosen_by": "explicit",
        }
    )
    assert placement_line(explicit) == "placement: xnnpack 7/8 nodes (88%), CPU: CUMSUM"
    # XNNPACK by default is what every TFLite run had: not recorded (older series continue)
    assert result.fingerprint is not None and result.fingerprint.delegate is None


def test_an_explicit_request_the_agent_ignored_is_a_device_error() -> None:
    old_reply = reply({"name": "onnxruntime", "providers": ["CPUExecutionProvider"]})
    with pytest.raises(DeviceError, match="--provider cuda"):
        check_accelerators_applied({"providers": ["cuda"], "chosen_by": "explicit"}, old_reply, "jetson1")
    with pytest.raises(DeviceError, match="--delegate none"):
        check_accelerators_applied({"delegate": "none", "chosen_by": "explicit"}, old_reply, "pi")
    # a profile's preference an older agent ignored is not an error (it ran the default)
    check_accelerators_applied({"providers": ["cuda"], "chosen_by": "profile"}, old_reply, "jetson1")
    check_accelerators_applied({"providers": ["cuda"], "chosen_by": "explicit"}, reply(ONNX_RUNTIME), "x")


# --- fingerprints -----------------------------------------------------------------------------


def fingerprint(runtime: dict[str, Any], facts: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_fingerprint("board", facts or {"machine": "aarch64"}, runtime, "ab" * 32, {}, {})


def test_the_hash_changes_with_provider_options_versions_delegate_and_power_mode() -> None:
    base = fingerprint(ONNX_RUNTIME)
    changed = [
        {**ONNX_RUNTIME, "provider_options": {"ggml": {"threads": "2", "partial": "1"}}},
        {**ONNX_RUNTIME, "provider_versions": {"onnxruntime-ggml": "0.3.0"}},
        {
            **ONNX_RUNTIME,
            "placement": {**GGML_PARTIAL, "by_provider": {"CPUExecutionProvider": {"nodes": 10}}},
        },
    ]
    for runtime in changed:
        assert fingerprint(runtime)["hash"] != base["hash"]
        assert differences(base, fingerprint(runtime))
    none = {**TFLITE_RUNTIME, "delegate": {"requested": "none", "applied": []}}
    assert differences(fingerprint(TFLITE_RUNTIME), fingerprint(none)) == {"delegate": (None, [])}
    explicit = {**TFLITE_RUNTIME, "delegate": {"requested": "xnnpack", "applied": ["xnnpack"]}}
    assert fingerprint(explicit)["hash"] == fingerprint(TFLITE_RUNTIME)["hash"]
    for facts in (
        {"machine": "aarch64", "power_mode": "MAXN"},
        {"machine": "aarch64", "jetson_clocks": True},
    ):
        assert fingerprint(ONNX_RUNTIME, facts)["hash"] != base["hash"]
    # a different cache path or fraction alone: the same conditions
    moved = copy.deepcopy(ONNX_RUNTIME)
    moved["provider_options"]["ggml"]["model_path"] = "elsewhere"
    moved["placement"]["accelerated_fraction"] = 0.5
    assert fingerprint(moved)["hash"] == base["hash"]


def test_old_runs_keep_their_hash_and_stay_comparable() -> None:
    import json

    for path in sorted(V1_DIR.glob("*.json")):
        stored = json.loads(path.read_text())["fingerprint"]
        loaded = Result.model_validate(json.loads(path.read_text())).fingerprint
        assert loaded is not None
        assert fingerprint_hash(loaded.comparable()) == stored["hash"], path.name

    # a new plain CPU run records no accelerator key: its hash is the one the same run had before
    cpu_placement = {
        "source": "assignment_info",
        "total_nodes": 10,
        "by_provider": {"CPUExecutionProvider": {"nodes": 10, "subgraphs": 10, "op_types": {"Conv": 10}}},
        "accelerated_fraction": 0.0,
    }
    old_style = {
        "name": "onnxruntime",
        "version": "1.32.0",
        "threads": 1,
        "providers": ["CPUExecutionProvider"],
    }
    new_cpu = {
        **old_style,
        "requested_providers": ["cpu"],
        "provider_versions": {"onnxruntime": "1.32.0"},
        "chosen_by": "default",
        "placement": cpu_placement,
    }
    assert fingerprint(new_cpu)["hash"] == fingerprint(old_style)["hash"]
    assert differences(fingerprint(old_style), fingerprint(new_cpu)) == {}
    # a Jetson power mode recorded on one side only is a difference (the old run's is unknown)
    jetson = fingerprint(new_cpu, {"machine": "aarch64", "power_mode": "25W"})
    assert differences(fingerprint(old_style), jetson) == {"power_mode": (None, "25W")}


def test_a_provider_that_ran_nothing_is_said_so() -> None:
    from edgekit.core.result import Runtime

    trap = {
        **ONNX_RUNTIME,
        "placement": {
            **GGML_PARTIAL,
            "by_provider": {"ggml": {"nodes": 0}, "CPUExecutionProvider": {"nodes": 10}},
        },
    }
    assert placement_line(Runtime.model_validate(trap)) == "placement: CPU only, 10 nodes (none ran on ggml)"


def test_one_node_is_singular_and_the_title_names_what_ran() -> None:
    from edgekit.cli.output import ran_on
    from edgekit.core.result import Runtime

    one = {
        **ONNX_RUNTIME,
        "placement": {
            **GGML_PARTIAL,
            "total_nodes": 1,
            "by_provider": {"CPUExecutionProvider": {"nodes": 1}},
        },
    }
    assert placement_line(Runtime.model_validate(one)) == "placement: CPU only, 1 node (none ran on ggml)"
    assert ran_on(Runtime.model_validate(one)) == " on CPU"
    assert ran_on(Runtime.model_validate(ONNX_RUNTIME)) == " on ggml + CPU"


def test_accelerator_warnings_of_a_runtime() -> None:
    from edgekit.measure.bench import accelerator_warnings

    nothing_ran = {
        **ONNX_RUNTIME,
        "ignored_provider_options": {"ggml": {"foo": "1"}},
        "placement": {
            **GGML_PARTIAL,
            "by_provider": {"ggml": {"nodes": 0}, "CPUExecutionProvider": {"nodes": 10}},
        },
    }
    assert accelerator_warnings(nothing_ran) == [
        "provider ggml did not take option foo=1 (onnxruntime ignores options a provider does not know)",
        "--provider ggml ran no node of this model (all 10 on the CPU): these are CPU numbers",
    ]
    assert accelerator_warnings(ONNX_RUNTIME) == []  # ggml ran 9 of 10
    assert (
        accelerator_warnings({**nothing_ran, "chosen_by": "profile", "ignored_provider_options": None}) == []
    )
