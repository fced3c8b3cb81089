"""The real agent (the zipapp the transports run) fed generated request lines: JSON of the wrong
shape and types, invalid JSON, non-UTF-8 bytes, deep nesting, lines of several MB. Each must get
one typed error reply (docs/protocol.md) while the agent keeps serving, with no traceback on
stderr and no wait beyond the timeout."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.lab.sysfs_tree import make_fake_sysfs
from edgekit.testing.models import make_mlp
from tests.agent_module import agent_command
from tests.fuzz.harness import count_case, fuzz

pytestmark = pytest.mark.integration

ERROR_TYPES = {
    "BadRequest", "UnknownOp", "LineTooLong", "ArtifactNotFound", "RuntimeMissing", "ModelLoadError",
    "InputError", "InferenceError", "ChildCrashed", "Timeout", "Internal", "DeviceBusy",
}  # fmt: skip
REPLY_TIMEOUT_S = 60.0


class Agent:
    """One agent process; replies are read on a thread so a hang fails the test instead of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.starts = 0
        self.start()

    def start(self) -> None:
        """Start the agent (again, after a case killed it: the case failed, the next ones still run)."""
        root = self.root
        self.starts += 1
        sysfs = root / "sys"
        if not sysfs.exists():
            make_fake_sysfs(sysfs, thermal_zones=[("cpu-thermal", 45000)], cpus=2)
        self.stderr_path = root / f"agent-{self.starts}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            agent_command("--sysfs-root", str(sysfs), "--workdir", str(root / "workdir")),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "TMPDIR": str(root)},
        )
        self.replies: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.sentinels = 0
        self.stderr_seen = 0

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.replies.put(line)
        self.replies.put(b"")

    def ensure_running(self) -> None:
        if self.process.poll() is not None:
            self.close()
            self.start()

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def read(self) -> dict[str, Any]:
        try:
            line = self.replies.get(timeout=REPLY_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"no reply within {REPLY_TIMEOUT_S} s") from None
        assert line, f"the agent stopped (exit {self.process.poll()}): {self.stderr()[-2000:]}"
        assert line.endswith(b"\n")
        return json.loads(line)

    def replies_to(self, data: bytes) -> list[dict[str, Any]]:
        """Send data, then a sentinel request; the replies before the sentinel's (events dropped)."""
        self.stderr_seen = len(self.stderr())
        self.sentinels += 1
        sentinel = f"sentinel-{self.sentinels}"
        self.send(data + b"\n" + json.dumps({"id": sentinel, "op": "no-such-op"}).encode() + b"\n")
        replies = []
        while True:
            reply = self.read()
            if reply.get("event"):
                continue
            if reply.get("id") == sentinel:
                assert reply["error"]["type"] == "UnknownOp", reply
                return replies
            replies.append(reply)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self._stderr.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    with pytest.MonkeyPatch.context() as patch:  # the zipapp is built under EDGEKIT_HOME
        patch.setenv("EDGEKIT_HOME", str(tmp_path_factory.mktemp("agent-home")))
        process = Agent(tmp_path_factory.mktemp("agent"))
        yield process
        process.close()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mlp(tmp_path_factory.mktemp("agent-model") / "mlp.onnx", features=8, hidden=8, classes=3)


def check_replies(agent: Agent, data: bytes, replies: list[dict[str, Any]]) -> None:
    expected = 0 if not data.strip() else 1
    assert len(replies) == expected, (data[:300], replies)
    for reply in replies:
        assert set(reply) >= {"id", "ok"}, reply
        if not reply["ok"]:
            error = reply["error"]
            assert error["type"] in ERROR_TYPES, reply
            assert isinstance(error["message"], str) and "\n" not in error["message"].strip(), reply
    stderr = agent.stderr()[agent.stderr_seen :]
    assert "Traceback" not in stderr, stderr[-3000:]


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
OPS = ["hello", "sensors", "bench", "ab", "HELLO", "", "bye ", "bench\x00"]
BENCH_KEYS = [
    "artifact", "runs", "warmup", "min_seconds", "max_seconds", "threads", "rounds", "processes",
    "process", "runtime", "inputs", "inputs_file", "seed", "max_start_temp_c", "thermal_zone",
    "thermal_wait_timeout_s", "thermal_poll_s", "power_sensors", "sensor_options", "lock_timeout_s",
    "baseline", "candidate", "round_seconds", "round_min_runs", "discover_power",
]  # fmt: skip


# Params whose large values ask for a legitimately long bench (runs, waits, windows).
TIME_KEYS = {
    "runs", "warmup", "rounds", "processes", "round_min_runs", "min_seconds", "max_seconds", "round_seconds",
    "lock_timeout_s", "thermal_wait_timeout_s", "thermal_poll_s",
}  # fmt: skip
NUMBER_LINES = [  # JSON numbers Python reads as inf, and an integer too long to convert
    b'{"id": 1e999, "op": "hello"}',
    b'{"id": 1, "op": "bench", "params": {"runs": 1e999}}',
    b'{"id": 1, "op": "bench", "params": {"runs": ' + b"9" * 5000 + b"}}",
]


def plausible(model: Path) -> st.SearchStrategy[Any]:
    """Values of about the right type, at the edges: zero, one, tiny, missing files, empty lists."""
    return st.sampled_from(
        [0, 1, 2, 3, 0.0, 0.001, 1.5, -1, "", "auto", "onnxruntime", "tflite", str(model),
         "/nonexistent/m.onnx", str(model.parent), [], ["rapl:package-0"], {}, None, True]
    )  # fmt: skip


@st.composite
def requests(draw: st.DrawFn, model: Path) -> bytes:
    """A request line: right shape with wrong types, or wrong shape, or not JSON or not UTF-8."""
    kind = draw(st.sampled_from(["params"] * 6 + ["shape", "invalid", "bytes", "deep", "numbers"]))
    if kind == "params":
        op = draw(st.sampled_from(["bench", "sensors", "ab", "hello"]))
        params: dict[str, Any] = {
            "artifact": str(model),
            "inputs": {"input": {"shape": [1, 8], "dtype": "float32"}},
            "runs": 2,
            "warmup": 0,
            "min_seconds": 0.0,
            "max_seconds": 2.0,
            "lock_timeout_s": 5.0,
            "thermal_wait_timeout_s": 1.0,
        }
        for key in draw(st.lists(st.sampled_from(BENCH_KEYS), min_size=0, max_size=2, unique=True)):
            value = draw(plausible(model) if draw(st.integers(0, 2)) else json_values)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if key in TIME_KEYS and number and value > 3:
                value = 3  # a valid request for a long bench is not a fault: keep each case short
            params[key] = value
        message: Any = {"id": draw(st.one_of(st.integers(), st.text(max_size=5))), "op": op, "params": params}
        return json.dumps(message).encode()
    if kind == "shape":
        message = draw(
            st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "id": json_values,
                        "op": st.one_of(st.sampled_from(OPS), json_values),
                        "params": json_values,
                    },
                ),
            )
        )
        return json.dumps(message).encode()
    if kind == "invalid":
        return draw(
            st.sampled_from(
                [
                    '{"id": 1, "op": ',
                    "{'id': 1}",
                    "[1,]",
                    '{"id": NaN, "op": "hello"}',
                    "nul\x00l",
                    "\ufeff{}",
                ]
            )
        ).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([500, 5000, 100000]))
        return b"[" * depth + b"]" * depth
    if kind == "numbers":
        return draw(st.sampled_from(NUMBER_LINES))
    return draw(st.binary(min_size=1, max_size=64)).replace(b"\n", b" ")


@given(data=st.data())
@fuzz(150)
def test_generated_lines(agent: Agent, model: Path, data: st.DataObject) -> None:
    line = data.draw(requests(model), label="line")
    agent.ensure_running()
    replies = agent.replies_to(line)
    check_replies(agent, line, replies)
    outcome = "ok" if replies and replies[0]["ok"] else replies[0]["error"]["type"] if replies else "none"
    count_case("test_agent_generated_lines", outcome)


# Found by the generated search (kept here as fixed cases): a deeply nested array killed the agent
# (RecursionError in json), params of the wrong type or range were Internal errors with a
# traceback on stderr (OverflowError on 1e999, TypeError, ValueError).
FOUND = [
    b"[" * 100000 + b"]" * 100000,
    b'{"id": 1, "op": "bench", "params": {"runs": 1e999}}',
    b'{"id": 2, "op": "bench", "params": {"artifact": "/m.onnx", "warmup": "ten"}}',
    b'{"id": 3, "op": "bench", "params": {"artifact": "/m.onnx", "processes": [1]}}',
    b'{"id": 4, "op": "ab", "params": {"baseline": 5, "candidate": {}}}',
    b'{"id": 5, "op": "ab", "params": {"baseline": {"artifact": "/a"}, "candidate": {"seed": -1}}}',
    b'{"id": 6, "op": "bench", "params": {"artifact": "/m.onnx", "lock_timeout_s": "x"}}',
    b'{"id": 7, "op": "bench", "params": {"artifact": "/m.onnx", "inputs": {"input": {"shape": "1x8"}}}}',
]


# Short ids: pytest puts the test id in the environment (PYTEST_CURRENT_TEST).
@pytest.mark.parametrize("line", FOUND, ids=[f"found{i}" for i in range(len(FOUND))])
def test_found_lines_are_bad_requests(agent: Agent, line: bytes) -> None:
    agent.ensure_running()
    replies = agent.replies_to(line)
    check_replies(agent, line, replies)
    assert replies[0]["error"]["type"] == "BadRequest", replies
    count_case("test_agent_found_lines")


@pytest.mark.parametrize(
    "line",
    [
        b"x" * (3 << 20),
        json.dumps({"id": 1, "op": "hello", "params": {"pad": "y" * (5 << 20)}}).encode(),
        b"\xff\xfe" * (1 << 20),
        json.dumps({"id": 2, "op": "hello", "params": {"pad": "z" * ((1 << 20) - 60)}}).encode(),
    ],
    ids=["3MB-junk", "5MB-json", "2MB-non-utf8", "just-under-1MiB"],
)
def test_huge_lines(agent: Agent, line: bytes) -> None:
    agent.ensure_running()
    replies = agent.replies_to(line)
    check_replies(agent, line, replies)
    if len(line) > 1 << 20:
        assert replies[0]["error"]["type"] == "LineTooLong"
    count_case("test_agent_huge_lines")


@pytest.mark.parametrize("tail", [b"", b'{"id": 1, "op": "hel', b"\xff\xfe"])
def test_exits_cleanly_at_eof(tmp_path: Path, tail: bytes) -> None:
    """End of stdin (after a partial line or none) stops the agent with exit 0 and no traceback."""
    agent = Agent(tmp_path)
    try:
        agent.send(tail)
        assert agent.process.stdin is not None
        agent.process.stdin.close()
        assert agent.process.wait(timeout=30) == 0
        assert "Traceback" not in agent.stderr()
    finally:
        agent.close()
    count_case("test_agent_eof")
