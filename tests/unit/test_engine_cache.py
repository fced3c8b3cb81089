"""The TensorRT engine cache (agents/edgekit_agent/runtimes/engine_cache.py) on real temporary
directories, and the cold-start split read from onnxruntime's profile (runtimes/onnx.py
session_times) on a recorded profile excerpt (onnxruntime 1.32.0, demo_digits.onnx)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from edgekit_agent.failure import AgentFailure
from edgekit_agent.params import check_params
from edgekit_agent.runtimes import engine_cache as ec
from edgekit_agent.runtimes.onnx import OnnxRuntimeModel, session_times

DIGITS = Path(__file__).resolve().parents[2] / "edgekit" / "data" / "demo_digits.onnx"
SHA = "ab" * 32

# The head of a profile file as onnxruntime 1.32.0 writes it (exact spacing), cut after 3 events.
PROFILE = "\n".join(
    [
        "[",
        '{"cat" : "Session","pid" :16667,"tid" :16667,"dur" :898,"ts" :4,"ph" : "X",'
        '"name" :"model_loading_uri","args" : {}},',
        '{"cat" : "Session","pid" :16667,"tid" :16667,"dur" :12886,"ts" :953,"ph" : "X",'
        '"name" :"session_initialization","args" : {}},',
        '{"cat" : "Node","pid" :16667,"tid" :16667,"dur" :107,"ts" :14076,"ph" : "X",'
        '"name" :"/2/Relu_output_0_nchwc_kernel_time","args" : {"provider" : "CPUExecutionProvider"}},',
        '{"cat" : "Session","pid" :16667,"tid" :16667,"dur" :373,"ts" :14058,"ph" : "X",'
        '"name" :"model_run","args" : {}}',
        "]",
    ]
)


def test_session_times_from_a_recorded_profile() -> None:
    assert session_times(json.loads(PROFILE)) == {"session_load": 0.898, "session_init": 12.886}


def test_session_times_from_bytes_and_odd_events() -> None:
    events = [
        {"cat": "Session", "name": "model_loading_array", "dur": 1500},
        {"cat": "Node", "name": "session_initialization", "dur": 99},  # not a session event
        {"cat": "Session", "name": "session_initialization", "dur": True},  # not a number
    ]
    assert session_times(events) == {"session_load": 1.5}
    assert session_times({"not": "a list"}) == {}


def test_a_real_session_reports_its_split_and_leaves_no_profile(tmp_path: Path) -> None:
    tempfile.tempdir = str(tmp_path)  # mkdtemp of the profile goes here for this test
    try:
        model = OnnxRuntimeModel(str(DIGITS), 1)
        # profiling ended with the session creation: the inferences are not profiled
        assert list(tmp_path.iterdir()) == []  # the profile and its directory are gone
        model.make_runner({"input": np.zeros((1, 1, 8, 8), np.float32)})()
    finally:
        tempfile.tempdir = None
    split = model.session_ms
    assert split["session_load"] > 0 and split["session_init"] > 0
    assert 0 < model.load_ns / 1e6 < 10_000
    assert list(tmp_path.iterdir()) == []
    assert model.runtime_info()["engine_cache"] is None


def test_key_is_stable_and_changes_with_its_inputs() -> None:
    options = {"trt_fp16_enable": "True", "trt_max_workspace_size": "1073741824"}
    key = ec.cache_key(SHA, "10.3.0", options)
    assert len(key) == 16 and int(key, 16) >= 0
    assert ec.cache_key(SHA, "10.3.0", dict(reversed(list(options.items())))) == key
    with_paths = dict(options, trt_engine_cache_path="/x", trt_timing_cache_path="/y")
    assert ec.cache_key(SHA, "10.3.0", with_paths) == key  # the paths are not part of it
    assert ec.cache_key("cd" * 32, "10.3.0", options) != key
    assert ec.cache_key(SHA, "10.7.0", options) != key
    assert ec.cache_key(SHA, "10.3.0", dict(options, trt_fp16_enable="False")) != key


def test_cache_options_keep_what_the_user_set() -> None:
    merged = ec.with_cache_options({"trt_timing_cache_enable": "0"}, "/w/trt-cache/k")
    assert merged == {
        "trt_timing_cache_enable": "0",
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": "/w/trt-cache/k",
        "trt_timing_cache_path": "/w/trt-cache/k",
    }


def test_artifact_sha256_from_the_staged_name_or_the_bytes(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x" * 3_000_000)
    assert ec.artifact_sha256(str(model)) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    staged = tmp_path / "artifacts" / f"{SHA}.onnx"
    nested = tmp_path / "artifacts" / SHA / "model.onnx"
    nested.parent.mkdir(parents=True)
    for path in (staged, nested):
        path.write_bytes(b"other bytes")
        assert ec.artifact_sha256(str(path)) == SHA


def test_eviction_plan_least_recently_used_first() -> None:
    entries = [("a", 10.0, 400), ("b", 30.0, 400), ("c", 20.0, 400), ("now", 40.0, 400)]
    assert ec.eviction_plan(entries, 1600, "now") == []
    assert ec.eviction_plan(entries, 1000, "now") == ["a", "c"]
    assert ec.eviction_plan(entries, 0, "now") == ["a", "c", "b"]  # the one in use stays
    assert ec.eviction_plan([("now", 1.0, 900)], 100, "now") == []


def test_hit_fresh_and_eviction_on_real_directories(tmp_path: Path) -> None:
    options = {"trt_fp16_enable": "True"}
    cache = ec.open_cache(str(tmp_path), SHA, "10.3.0", options, fresh=False)
    assert not cache.hit and os.path.isdir(cache.directory)
    assert cache.relative == "trt-cache/" + ec.cache_key(SHA, "10.3.0", options)
    (Path(cache.directory) / "TensorrtExecutionProvider_TRTKernel_graph_1.engine").write_bytes(b"e" * 1000)
    (Path(cache.directory) / "TensorrtExecutionProvider_cache_sm87.timing").write_bytes(b"t" * 24)
    old = []
    for age, name in ((300, "old1"), (200, "old2"), (100, "old3")):
        path = tmp_path / "trt-cache" / name
        path.mkdir()
        (path / "x.engine").write_bytes(b"o" * 400_000)
        os.utime(path, (1_000_000 - age, 1_000_000 - age))
        old.append(path)
    # 1.2 MB of old engines + ours, cap 0.5 MiB: the two least recently used go
    reply = ec.close_cache(cache, 0.5)
    assert reply == {"dir": cache.relative, "hit": False, "size_bytes": 1024, "evicted": 2}
    assert [p.exists() for p in old] == [False, False, True]
    again = ec.open_cache(str(tmp_path), SHA, "10.3.0", options, fresh=False)
    assert again.hit and again.directory == cache.directory
    fresh = ec.open_cache(str(tmp_path), SHA, "10.3.0", options, fresh=True)
    assert not fresh.hit and os.listdir(fresh.directory) == []


def test_a_missing_tensorrt_writes_nothing(tmp_path: Path) -> None:
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT is installed here")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    with pytest.raises(AgentFailure) as caught:
        OnnxRuntimeModel(str(DIGITS), 1, providers=["tensorrt"], workdir=str(workdir), fresh_engine=True)
    assert caught.value.error_type == "ProviderMissing"
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"engine_cache_max_mb": 0}, "engine_cache_max_mb"),
        ({"engine_cache_max_mb": -5.0}, "engine_cache_max_mb"),
        ({"engine_cache_max_mb": float("nan")}, "engine_cache_max_mb"),
        ({"engine_cache_max_mb": True}, "engine_cache_max_mb"),
        ({"fresh_engine": "yes"}, "fresh_engine"),
    ],
)
def test_engine_params_are_checked(params: dict[str, object], param: str) -> None:
    with pytest.raises(AgentFailure) as caught:
        check_params(params)
    assert caught.value.error_type == "BadRequest" and caught.value.data["param"] == param
    check_params({"engine_cache_max_mb": 0.5, "fresh_engine": False})


def test_a_tensorrt_session_gets_the_cache_options(tmp_path: Path) -> None:
    """What OnnxRuntimeModel hands TensorRT (resolved as on a board that has it): the cache paths
    in <workdir>/trt-cache/<key>, reported relative; a user's own cache path is left alone."""
    from edgekit_agent.runtimes.providers import PROVIDERS, Resolved

    resolved = [Resolved(PROVIDERS["tensorrt"], [], "1.20.0"), Resolved(PROVIDERS["cpu"], [], "1.20.0")]
    applied = {"tensorrt": {"trt_fp16_enable": "True"}, "cpu": {}}
    cache = OnnxRuntimeModel._open_engine_cache(str(DIGITS), resolved, applied, str(tmp_path), False)
    assert cache is not None and not cache.hit
    key = ec.cache_key(ec.file_sha256(str(DIGITS)), ec.tensorrt_version(), {"trt_fp16_enable": "True"})
    assert cache.directory == str(tmp_path / "trt-cache" / key)
    assert applied["tensorrt"]["trt_engine_cache_path"] == cache.directory
    assert applied["tensorrt"]["trt_engine_cache_enable"] == "1"
    assert ec.relative_options(applied["tensorrt"], cache)["trt_timing_cache_path"] == f"trt-cache/{key}"
    own = {"tensorrt": {"trt_engine_cache_path": str(tmp_path / "mine")}, "cpu": {}}
    assert OnnxRuntimeModel._open_engine_cache(str(DIGITS), resolved, own, str(tmp_path), False) is None
    assert (
        OnnxRuntimeModel._open_engine_cache(str(DIGITS), resolved[1:], {"cpu": {}}, str(tmp_path), False)
        is None
    )
