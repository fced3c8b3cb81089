"""The real agent as a subprocess: protocol framing, bad input, child crashes, real benches."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.lab.sysfs_tree import make_fake_sysfs
from tests.agent_module import agent_command

pytestmark = pytest.mark.integration

MLP_INPUTS = {"input": {"shape": [1, 64], "dtype": "float32"}}


class AgentProcess:
    def __init__(self, sysfs: Path, env: dict[str, str] | None = None, workdir: Path | None = None) -> None:
        self.process = subprocess.Popen(
            agent_command("--sysfs-root", str(sysfs), "--workdir", str(workdir or sysfs.parent / "workdir")),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "agent closed stdout"
        return json.loads(line)

    def request(self, message: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.send_raw((json.dumps(message) + "\n").encode())
        events = []
        while True:
            reply = self.read()
            if reply.get("event") == "progress":
                events.append(reply)
                continue
            return reply, events


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_fake_sysfs(
        tmp_path / "sys", thermal_zones=[("cpu-thermal", 48312)], cpus=4, governor="schedutil"
    )


@pytest.fixture
def agent(sysfs: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(sysfs)
    yield process
    process.process.kill()
    process.process.wait()


def bench_params(model: Path, **extra: Any) -> dict[str, Any]:
    return {
        "artifact": str(model),
        "inputs": MLP_INPUTS,
        "warmup": 2,
        "runs": 20,
        "min_seconds": 0.0,
        "threads": 1,
        **extra,
    }


def test_hello_reports_facts_from_the_tree(agent: AgentProcess) -> None:
    reply, _ = agent.request({"id": 1, "op": "hello"})
    assert reply["ok"] is True and reply["id"] == 1
    result = reply["result"]
    assert result["protocol"] == 1
    facts = result["facts"]
    assert facts["temperatures_c"] == {"thermal_zone0:cpu-thermal": 48.312}
    assert facts["governor"] == "schedutil"
    assert facts["cores_online"] == [0, 1, 2, 3]
    assert facts["runtimes"]["onnxruntime"]
    # The long-lived agent stays light: it has not loaded the runtime's shared library.
    maps = Path(f"/proc/{agent.process.pid}/maps").read_text()
    assert "onnxruntime" not in maps


def test_bench_runs_until_runs_and_min_seconds(agent: AgentProcess, mlp_model: Path) -> None:
    reply, events = agent.request({"id": "b1", "op": "bench", "params": bench_params(mlp_model)})
    assert reply["ok"], reply
    result = reply["result"]
    assert len(result["latencies_ns"]) == 20 and all(v > 0 for v in result["latencies_ns"])
    assert result["runtime"] == {
        "name": "onnxruntime",
        "version": result["runtime"]["version"],
        "threads": 1,
        "providers": ["CPUExecutionProvider"],
        "requested_providers": ["cpu"],
        "provider_options": {},
        "ignored_provider_options": {},
        "provider_versions": {"onnxruntime": result["runtime"]["version"]},
        "chosen_by": "default",
        "placement": result["runtime"]["placement"],
        "engine_cache": None,  # TensorRT only
    }
    assert result["runtime"]["placement"]["accelerated_fraction"] == 0.0
    assert set(result["cold_start_ms"]) == {"load", "first_inference", "session_load", "session_init"}
    memory = result["memory"]
    assert memory["peak_rss_bytes"] >= memory["after_load_rss_bytes"] >= memory["baseline_rss_bytes"] > 0
    assert memory["source"] == "procfs:VmHWM"
    assert result["sensors_start"]["thermal_zones"][0]["temp_c"] == 48.312
    assert result["outputs"] == [{"name": "logits", "kind": "tensor", "shape": [1, 10], "dtype": "float32"}]
    assert events and all(e["id"] == "b1" for e in events)
    timed, _ = agent.request({"id": 2, "op": "bench", "params": bench_params(mlp_model, min_seconds=0.3)})
    assert timed["result"]["window"]["duration_s"] >= 0.3
    assert len(timed["result"]["latencies_ns"]) > 20


def test_multi_input_and_inputs_file(agent: AgentProcess, multi_input_model: Path, tmp_path: Path) -> None:
    spec = {
        "tokens": {"shape": [2, 5], "dtype": "int64"},
        "mask": {"shape": [2, 5], "dtype": "bool"},
        "scale": {"shape": [1], "dtype": "float32"},
    }
    reply, _ = agent.request(
        {
            "id": 1,
            "op": "bench",
            "params": {"artifact": str(multi_input_model), "inputs": spec, "runs": 5, "min_seconds": 0},
        }
    )
    assert reply["ok"], reply
    assert reply["result"]["outputs"] == [
        {"name": "summed", "kind": "tensor", "shape": [2], "dtype": "float32"},
        {"name": "count", "kind": "tensor", "shape": [2], "dtype": "int64"},
    ]
    data = tmp_path / "inputs.npz"
    np.savez(
        data,
        tokens=np.arange(30).reshape(6, 5),
        mask=np.ones((6, 5), bool),
        scale=np.array([0.5], np.float32),
    )
    reply, _ = agent.request(
        {
            "id": 2,
            "op": "bench",
            "params": {
                "artifact": str(multi_input_model),
                "inputs": spec,
                "inputs_file": str(data),
                "runs": 5,
                "min_seconds": 0,
            },
        }
    )
    assert reply["ok"], reply
    missing = tmp_path / "missing.npz"
    np.savez(missing, tokens=np.zeros((1, 5), np.int64))
    reply, _ = agent.request(
        {
            "id": 3,
            "op": "bench",
            "params": {
                "artifact": str(multi_input_model),
                "inputs": spec,
                "inputs_file": str(missing),
                "runs": 5,
            },
        }
    )
    assert reply["error"]["type"] == "InputError" and "mask" in reply["error"]["message"]


def test_garbage_is_answered_and_the_agent_keeps_serving(agent: AgentProcess) -> None:
    for line in (b"not json\n", b"[1, 2]\n", b"{}\n", b"\xff\xfe\n", b'{"id": 5}\n'):
        agent.send_raw(line)
        reply = agent.read()
        assert reply["ok"] is False and reply["error"]["type"] == "BadRequest", (line, reply)
    reply, _ = agent.request({"id": 6, "op": "reboot"})
    assert (reply["id"], reply["error"]["type"]) == (6, "UnknownOp")
    reply, _ = agent.request({"id": 7, "op": "hello", "params": [1]})
    assert reply["error"]["type"] == "BadRequest"
    reply, _ = agent.request({"id": 8, "op": "bench", "params": {}})
    assert reply["error"]["type"] == "BadRequest"
    agent.send_raw(b'{"id": 9, "op": "hello", "pad": "' + b"x" * (2 << 20) + b'"}\n')
    reply = agent.read()
    assert reply["error"]["type"] == "LineTooLong"
    reply, _ = agent.request({"id": 10, "op": "hello"})
    assert reply["ok"] and reply["id"] == 10


def test_bad_artifacts(agent: AgentProcess, tmp_path: Path, mlp_model: Path) -> None:
    reply, _ = agent.request({"id": 1, "op": "bench", "params": bench_params(tmp_path / "nope.onnx")})
    assert reply["error"]["type"] == "ArtifactNotFound"
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(mlp_model.read_bytes()[:200])
    reply, _ = agent.request({"id": 2, "op": "bench", "params": bench_params(corrupt)})
    assert reply["error"]["type"] == "ModelLoadError"
    reply, _ = agent.request({"id": 3, "op": "bench", "params": bench_params(mlp_model, runtime="tensorrt")})
    assert reply["error"]["type"] == "BadRequest"


def test_a_crashing_child_is_an_error_not_a_dead_agent(sysfs: Path, mlp_model: Path) -> None:
    agent = AgentProcess(sysfs, env={"EDGEKIT_AGENT_TEST_CRASH": "SIGSEGV"})
    try:
        reply, _ = agent.request({"id": 1, "op": "bench", "params": bench_params(mlp_model)})
        assert reply["error"]["type"] == "ChildCrashed"
        assert reply["error"]["data"]["signal"] == "SIGSEGV"
        reply, _ = agent.request({"id": 2, "op": "hello"})
        assert reply["ok"]
    finally:
        agent.process.kill()
        agent.process.wait()


def test_bye_and_eof_exit_cleanly(agent: AgentProcess) -> None:
    reply, _ = agent.request({"id": 1, "op": "bye"})
    assert reply == {"id": 1, "ok": True, "result": {"bye": True}}
    assert agent.process.wait(timeout=10) == 0


def test_one_bench_at_a_time_and_a_dead_holder_releases_the_lock(sysfs: Path, mlp_model: Path) -> None:
    holder, waiter = AgentProcess(sysfs), AgentProcess(sysfs)  # same board: same workdir
    try:
        holder.send_raw(
            (
                json.dumps({"id": 1, "op": "bench", "params": bench_params(mlp_model, min_seconds=30)}) + "\n"
            ).encode()
        )
        assert holder.read()["event"] == "progress"  # it holds the lock now
        reply, events = waiter.request(
            {"id": 2, "op": "bench", "params": bench_params(mlp_model, lock_timeout_s=0.5)}
        )
        assert reply["error"]["type"] == "DeviceBusy"
        assert f'"pid": {holder.process.pid}' in reply["error"]["message"]
        assert events and events[0]["phase"] == "lock"
        holder.process.kill()  # the holder dies mid-bench: the kernel drops its flock
        holder.process.wait()
        reply, _ = waiter.request(
            {"id": 3, "op": "bench", "params": bench_params(mlp_model, lock_timeout_s=5)}
        )
        assert reply["ok"], reply
    finally:
        for agent in (holder, waiter):
            agent.process.kill()
            agent.process.wait()


def test_ab_times_both_models_in_abba_rounds(agent: AgentProcess, mlp_model: Path) -> None:
    side = {"artifact": str(mlp_model), "inputs": MLP_INPUTS, "seed": 0}
    params = {
        "baseline": side,
        "candidate": dict(side, seed=1),
        "warmup": 2,
        "threads": 1,
        "rounds": 3,
        "round_seconds": 0.01,
        "round_min_runs": 7,
    }
    reply, events = agent.request({"id": 1, "op": "ab", "params": params})
    assert reply["ok"], reply
    result = reply["result"]
    assert result["order"] == "ABBA" and len(result["sides"]) == 2
    for side_result in result["sides"]:
        assert side_result["runtime"]["name"] == "onnxruntime"
        assert len(side_result["rounds_ns"]) == 3
        assert all(len(r) >= 7 and all(ns > 0 for ns in r) for r in side_result["rounds_ns"])
    pairs = [e for e in events if e.get("phase") == "ab"]
    assert [e["done"] for e in pairs] == [1, 2, 3] and all(e["baseline_median_ns"] > 0 for e in pairs)
    assert result["thermal_wait"] is None  # no max_start_temp_c: no wait
    hot = dict(
        params, rounds=1, max_start_temp_c=30.0, thermal_wait_timeout_s=0.0, thermal_zone="cpu-thermal"
    )
    reply, _ = agent.request({"id": 4, "op": "ab", "params": hot})
    assert reply["ok"] and reply["result"]["thermal_wait"]["timed_out"] is True  # the zone is at 48.3 C
    reply, _ = agent.request({"id": 2, "op": "ab", "params": dict(params, rounds=0)})
    assert not reply["ok"] and reply["error"]["type"] == "BadRequest"
    reply, _ = agent.request({"id": 3, "op": "ab", "params": {"baseline": side}})
    assert (
        not reply["ok"]
        and reply["error"]["type"] == "BadRequest"
        and "candidate" in reply["error"]["message"]
    )
