"""Ctrl-C (SIGINT) in the middle of a real run: exit 130, one `edgekit: interrupted` line, no
bench child left on the device, the device lock free, no half artifact, resumable state kept.

Each test runs the `edgekit` command in a subprocess of its own session, waits until the work is
under way (a progress line, a bench child in the process tree, a staging directory), signals it
and then looks at what is left: processes (psutil), flocks (/proc/locks), files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from edgekit.lab.sysfs_tree import make_fake_sysfs
from edgekit.testing.ssh import Sshd, write_inventory
from tests.cli_run import run_cli
from tests.integration.test_agent_protocol import AgentProcess, bench_params

pytestmark = pytest.mark.integration

LOCAL_LOCK = Path("/tmp") / f"edgekit-local-{os.getuid()}.lock"  # edgekit.transport.local


class Cli:
    """`edgekit ARGS` in its own session, its stderr lines collected as they come."""

    def __init__(self, *args: str, home: Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgekit.cli.main", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "EDGEKIT_HOME": str(home), **(env or {})},
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process.poll() is None, (
                f"exited {self.process.returncode} before {what}: {self.lines}"
            )
            assert time.monotonic() < deadline, f"no {what} within {timeout:g} s: {self.lines}"
            time.sleep(0.02)

    def wait_for_line(self, fragment: str) -> None:
        self.wait_for(lambda: any(fragment in line for line in self.lines), repr(fragment))

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def interrupt(self, whole_group: bool = False) -> list[str]:
        """SIGINT to edgekit alone (`kill -INT`, a CI runner) or to its process group (Ctrl-C on a
        terminal); the exit code is checked here, the stderr lines after the signal returned."""
        seen = len(self.lines)
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=30) == 130, self.lines
        self._reader.join(timeout=5)
        assert not any("Traceback" in line for line in self.lines), self.lines
        return self.lines[seen:]


def bench_children(processes: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            if "--bench-child" in process.cmdline():
                found.append(process)
        except psutil.Error:
            pass
    return found


def assert_all_gone(processes: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(processes, timeout=5)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]


def flock_holders(path: Path) -> set[int]:
    """The pids holding a flock on `path` (/proc/locks: id FLOCK ADVISORY WRITE pid maj:min:inode ...)."""
    if not path.exists():
        return set()
    inode = os.stat(path).st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and "->" not in fields and fields[5].endswith(f":{inode}"):
            holders.add(int(fields[4]))
    return holders


def assert_interrupted(after: list[str]) -> None:
    assert [line for line in after if line.startswith("edgekit:")] == ["edgekit: interrupted"], after
    assert after[-1] == "edgekit: interrupted", after


@pytest.mark.parametrize("whole_group", [False, True], ids=["kill-int", "ctrl-c"])
def test_an_interrupted_bench_stops_its_child_and_frees_the_device(
    mlp_model: Path, tmp_path: Path, whole_group: bool
) -> None:
    cli = Cli(
        "bench", str(mlp_model), "--min-seconds", "120", "--processes", "1", "--no-store", home=tmp_path
    )
    cli.wait_for_line("timed 0/")  # the timed window started: the bench child is busy
    tree = cli.tree()
    assert bench_children(tree), [p.cmdline() for p in tree]
    assert_interrupted(cli.interrupt(whole_group))
    assert_all_gone(tree)
    assert not flock_holders(LOCAL_LOCK) & {p.pid for p in tree}


def test_an_interrupted_bench_over_ssh_stops_the_boards_child(
    sshd: Sshd, mlp_model: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "board"
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("pi", workdir))
    cli = Cli(
        "bench", str(mlp_model), "--device", "pi", "--inventory", str(inventory),
        "--min-seconds", "120", "--processes", "1", "--no-store", home=tmp_path,
    )  # fmt: skip
    cli.wait_for_line("timed 0/")

    def board_processes() -> list[psutil.Process]:  # the agent (by its --workdir) and its children
        agents = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if str(workdir) in cmdline and any(part.endswith(".pyz") for part in cmdline):
                agents.append(process)
        return agents + [child for agent in agents for child in agent.children(recursive=True)]

    on_board = board_processes()
    assert bench_children(on_board), [p.cmdline() for p in on_board]
    assert_interrupted(cli.interrupt())
    assert_all_gone(on_board)
    assert not flock_holders(workdir / "bench.lock")


def test_an_interrupted_compress_leaves_no_half_artifact(tmp_path: Path) -> None:
    scratch, outputs = tmp_path / "tmp", tmp_path / "outputs"
    scratch.mkdir()
    outputs.mkdir()
    cli = Cli(
        "compress", str(demo_model_path()), "-o", str(outputs / "int8"),
        "--recipe", "int8-static:calib=entropy", "--calib", str(demo_calib_set_path()),
        "--eval", str(demo_test_set_path()), home=tmp_path, env={"TMPDIR": str(scratch)},
    )  # fmt: skip
    cli.wait_for(lambda: any(outputs.iterdir()), "the staging directory")  # the work is under way
    assert_interrupted(cli.interrupt())
    assert list(outputs.iterdir()) == []  # neither the artifact nor its staging directory
    # nor a temporary directory (".ses" is onnxruntime's own session-id file, written by every run)
    assert [path.name for path in scratch.iterdir() if path.name != ".ses"] == []


# A Ctrl-C that lands inside an exec() of a string (dataclasses, namedtuple: here during torch's
# lazy import in `compress`) makes CPython believe the KeyboardInterrupt went unhandled, and under
# `python -m` a plain sys.exit(130) then ended as a SIGINT death (-2). A command added to the real
# app makes that landing place certain: the real SIGINT, the real handler, the real exit path.
EXEC_INTERRUPT = """
import sys
from edgekit.cli import main

@main.app.command("exec-interrupt")
def exec_interrupt() -> None:
    exec("import os, signal\\nos.kill(os.getpid(), signal.SIGINT)\\nwhile True: pass")

sys.argv = ["edgekit", "exec-interrupt"]
main.run()
"""


def test_a_ctrl_c_inside_an_exec_still_exits_130(tmp_path: Path) -> None:
    (tmp_path / "exec_interrupt.py").write_text(EXEC_INTERRUPT)
    done = subprocess.run(
        [sys.executable, "-m", "exec_interrupt"], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env={**os.environ, "EDGEKIT_HOME": str(tmp_path)}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert done.stderr.splitlines()[-1:] == ["edgekit: interrupted"], done.stderr


def test_an_interrupted_fleet_stops_its_benches_and_resumes(tmp_path: Path) -> None:
    store = tmp_path / "results.sqlite"

    def plan(min_seconds: float) -> Path:
        path = tmp_path / "nightly.toml"
        path.write_text(
            f'[plan]\nruns = 20\nmin_seconds = {min_seconds}\n[devices]\nnames = ["local"]\n'
            f'[[model]]\npath = "{demo_model_path()}"\nrecipes = ["as-is", "fp16"]\n'
        )
        return path

    cli = Cli("fleet", "run", str(plan(120)), "--store", str(store), home=tmp_path)
    cli.wait_for(lambda: bool(bench_children(cli.tree())), "a bench child")
    tree = cli.tree()
    after = cli.interrupt(whole_group=True)  # Ctrl-C: the agent dies of the same SIGINT
    assert_interrupted(after)
    # the cut cell is no device failure: no FAILED line, no error count
    assert not [line for line in cli.lines if "FAILED" in line or "error(s)" in line], cli.lines
    assert_all_gone(tree)
    assert not flock_holders(LOCAL_LOCK) & {p.pid for p in tree}

    again = run_cli("fleet", "run", str(plan(0.1)), "--store", str(store), "--json", home=tmp_path)
    assert again.returncode in (0, 1), again.stderr
    assert json.loads(again.stdout)["resumed"] is True  # the interrupted plan run was kept
    with sqlite3.connect(store) as conn:
        recipes = sorted(
            json.loads(r[0])["fleet"]["recipe"] for r in conn.execute("SELECT result_json FROM runs")
        )
    assert recipes == ["as-is", "fp16"]  # each cell once: the interrupted one was not stored


def test_an_interrupted_optimize_keeps_its_state_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = (
        "optimize", str(demo_model_path()), "--eval", str(demo_test_set_path()),
        "--calib", str(demo_calib_set_path()), "-o", str(out), "--recipe", "fp16", "--recipe", "int8-dynamic",
        "--runs", "50", "--min-seconds", "1",
    )  # fmt: skip
    cli = Cli(*args, home=tmp_path)
    cli.wait_for_line("trying fp16")  # the float baseline is measured and saved
    assert "local: trying float" in cli.lines
    cli.wait_for(lambda: bool(bench_children(cli.tree())), "fp16's bench child")
    tree = cli.tree()
    assert_interrupted(cli.interrupt())
    assert_all_gone(tree)
    state = json.loads((out / "search.json").read_text())
    names = [o["name"] for o in state["devices"]["local"]["outcomes"]]
    assert names == ["float"]

    resumed = Cli(*args, home=tmp_path)
    resumed.wait_for_line("trying fp16")
    assert resumed.lines == ["local: trying fp16"]  # the saved baseline is not measured again
    assert_interrupted(resumed.interrupt())


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_fake_sysfs(tmp_path / "sys", thermal_zones=[("cpu-thermal", 48312)], cpus=4)


def test_the_agent_stops_its_bench_on_cancel_and_keeps_serving(sysfs: Path, mlp_model: Path) -> None:
    agent = AgentProcess(sysfs)
    try:
        agent.send_raw(
            (
                json.dumps({"id": 1, "op": "bench", "params": bench_params(mlp_model, min_seconds=120)})
                + "\n"
            ).encode()
        )
        while agent.read().get("phase") != "timed":  # the timed window started
            pass
        children = bench_children(psutil.Process(agent.process.pid).children(recursive=True))
        assert children
        agent.send_raw(b'{"id": 2, "op": "cancel"}\n')
        replies = {}
        while len(replies) < 2:
            reply = agent.read()
            if "ok" in reply:
                replies[reply["id"]] = reply
        assert replies[2] == {"id": 2, "ok": True, "result": {"cancelled": True}}
        assert replies[1]["ok"] is False and replies[1]["error"]["type"] == "Cancelled"
        assert_all_gone(children)
        assert agent.request({"id": 3, "op": "hello"})[0]["ok"] is True  # still serving
    finally:
        agent.process.kill()
        agent.process.wait()


def test_the_agent_waiting_for_the_device_lock_exits_when_its_host_goes(
    sysfs: Path, mlp_model: Path, tmp_path: Path
) -> None:
    import fcntl

    workdir = tmp_path / "board"
    workdir.mkdir()
    with open(workdir / "bench.lock", "a+") as held:  # another benchmark holds the device
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        agent = AgentProcess(sysfs, workdir=workdir)
        agent.send_raw(
            (json.dumps({"id": 1, "op": "bench", "params": bench_params(mlp_model)}) + "\n").encode()
        )
        assert agent.read()["phase"] == "lock"
        assert agent.process.stdin is not None
        agent.process.stdin.close()  # the host was interrupted: its end of the channel closes
        assert agent.process.wait(timeout=10) == 0
