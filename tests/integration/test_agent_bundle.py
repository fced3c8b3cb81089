"""The agent zipapp through the real transports: the local transport runs it and its bench child
starts from inside it; over a real sshd it is uploaded once by hash and never again while unchanged;
a wheel ships sources that build the very same zipapp."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from edgekit.core.errors import AgentError
from edgekit.core.resources import agent_source_dir
from edgekit.lab.sysfs_tree import make_fake_sysfs
from edgekit.testing.ssh import Sshd, sshd_missing_reason
from edgekit.transport.agent_bundle import build_agent_bundle, bundle_bytes
from edgekit.transport.agent_client import agent_session
from edgekit.transport.inventory import SshTarget
from edgekit.transport.local import LocalTransport
from edgekit.transport.ssh import SshTransport

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _bench_params(model: Path) -> dict[str, Any]:
    return {
        "artifact": str(model),
        "inputs": {"input": {"shape": [1, 64], "dtype": "float32"}},
        "runs": 5,
        "warmup": 1,
        "min_seconds": 0,
        "threads": 1,
    }


def test_the_local_transport_runs_the_zipapp_and_its_bench_child(mlp_model: Path, tmp_path: Path) -> None:
    transport = LocalTransport(sysfs_root=make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu", 41000)]))
    argv = transport.agent_argv()
    assert argv[:2] == [sys.executable, str(build_agent_bundle().path)]
    with agent_session(transport) as client:
        assert client.hello()["facts"]["temperatures_c"] == {"thermal_zone0:cpu": 41.0}
        result = client.bench(_bench_params(mlp_model))  # only the bench child runs a bench
    assert len(result["latencies_ns"]) == 5
    assert result["memory"]["peak_rss_bytes"] >= result["memory"]["baseline_rss_bytes"] > 0
    assert result["sensors_start"]["thermal_zones"][0]["temp_c"] == 41.0  # the child got --sysfs-root


def test_a_bench_child_crash_under_the_local_transport_is_child_crashed(
    mlp_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEKIT_AGENT_TEST_CRASH", "SIGSEGV")
    with agent_session(LocalTransport()) as client, pytest.raises(AgentError) as caught:
        client.bench(_bench_params(mlp_model))
    assert caught.value.error_type == "ChildCrashed" and "SIGSEGV" in str(caught.value)


def test_the_source_folder_runs_with_m_and_starts_its_child_the_same_way(
    mlp_model: Path, tmp_path: Path
) -> None:
    """`PYTHONPATH=agents python3 -m edgekit_agent` (development): the child is `-m edgekit_agent` too."""
    bench = {"id": 1, "op": "bench", "params": _bench_params(mlp_model)}
    request = (json.dumps(bench) + '\n{"id": 2, "op": "bye"}\n').encode()
    done = subprocess.run(
        [sys.executable, "-m", "edgekit_agent", "--workdir", str(tmp_path / "w")],
        input=request,
        capture_output=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(agent_source_dir())},
        timeout=300,
    )
    replies = [line for line in done.stdout.decode().splitlines() if '"ok"' in line]
    assert replies and '"ok":true' in replies[0], done.stderr.decode()[-2000:]


@pytest.mark.skipif(sshd_missing_reason() is not None, reason=str(sshd_missing_reason()))
def test_an_unchanged_agent_is_uploaded_once_and_never_again(
    sshd: Sshd, mlp_model: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "board"
    target = SshTarget(**sshd.inventory_entry("b", workdir))  # type: ignore[arg-type]
    with agent_session(SshTransport(target)) as client:
        client.hello()
    bundle = build_agent_bundle()
    uploaded = workdir / bundle.name
    assert [p.name for p in workdir.glob("agent-*")] == [bundle.name]
    assert uploaded.read_bytes() == bundle.path.read_bytes()
    os.utime(uploaded, (1_000_000_000, 1_000_000_000))
    inode = uploaded.stat().st_ino
    with agent_session(SshTransport(target)) as client:
        result = client.bench(_bench_params(mlp_model))  # the child starts from the uploaded zipapp
    assert len(result["latencies_ns"]) == 5
    after = uploaded.stat()
    assert (after.st_ino, after.st_mtime) == (inode, 1_000_000_000)  # not written again
    assert [p.name for p in workdir.glob("agent-*")] == [bundle.name]


def test_the_wheel_ships_sources_that_build_the_same_zipapp(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(REPO),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("edgekit-*.whl")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    assert not [n for n in names if n.startswith("edgekit/_bundled/agents/") and not n.endswith(".py")]
    assert not [n for n in names if n.startswith("agents/") or "edgekit_agent.py" in n]
    from_wheel = bundle_bytes(unpacked / "edgekit" / "_bundled" / "agents")
    assert hashlib.sha256(from_wheel).hexdigest() == build_agent_bundle().sha256
