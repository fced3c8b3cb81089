"""SSH devices against a real OpenSSH sshd on 127.0.0.1 (no mocked paramiko)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from edgekit.core.artifacts import sha256_file
from edgekit.data import demo_model_path
from edgekit.measure.fleet import load_plan, run_plan
from edgekit.testing.ssh import Sshd, keygen, sshd_missing_reason, write_inventory
from tests.cli_run import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sshd_missing_reason() is not None, reason=str(sshd_missing_reason())),
]
FAST = ["--runs", "20", "--min-seconds", "0", "--json"]


def test_bench_over_ssh_pushes_once_then_reuses(sshd: Sshd, tmp_path: Path) -> None:
    workdir = tmp_path / "board home"  # a space: commands must be quoted
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("pi4-lab-1", workdir))
    first = run_cli(
        "bench",
        str(demo_model_path()),
        "--device",
        "pi4-lab-1",
        "--inventory",
        str(inventory),
        *FAST,
        home=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    size = demo_model_path().stat().st_size
    assert result["transfer"]["seconds"] > 0
    assert result["transfer"] | {"seconds": 0} == {
        "bytes_sent": size,
        "skipped_cached": False,
        "method": "ssh",
        "seconds": 0,
    }
    assert result["device"]["name"] == "pi4-lab-1" and result["device"]["kind"] == "ssh"
    assert result["latency_ms"]["n"] == 20
    sha = result["artifact"]["sha256"]
    assert (workdir / "artifacts" / f"{sha}.onnx").read_bytes() == demo_model_path().read_bytes()
    assert len(list(workdir.glob("agent-*.pyz"))) == 1
    assert not list((workdir / "artifacts").glob("*.part-*"))
    second = json.loads(
        run_cli(
            "bench",
            str(demo_model_path()),
            "--device",
            "pi4-lab-1",
            "--inventory",
            str(inventory),
            *FAST,
            home=tmp_path,
        ).stdout
    )
    assert second["transfer"] | {"seconds": 0} == {
        "bytes_sent": 0,
        "skipped_cached": True,
        "method": "ssh",
        "seconds": 0,
    }


def test_a_corrupted_copy_on_the_board_is_replaced(sshd: Sshd, tmp_path: Path) -> None:
    workdir = tmp_path / "board"
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("b", workdir))
    args = ["bench", str(demo_model_path()), "--device", "b", "--inventory", str(inventory), *FAST]
    sha = json.loads(run_cli(*args, home=tmp_path).stdout)["artifact"]["sha256"]
    stored = workdir / "artifacts" / f"{sha}.onnx"
    stored.write_bytes(stored.read_bytes()[:1000])  # a truncated file under the right name
    again = json.loads(run_cli(*args, home=tmp_path).stdout)
    assert again["transfer"]["bytes_sent"] == demo_model_path().stat().st_size
    assert stored.read_bytes() == demo_model_path().read_bytes()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": 1}, "unreachable at 127.0.0.1:1"),
        ({"key_file": "WRONG_KEY"}, "authentication failed for root@127.0.0.1"),
        ({"known_hosts": "EMPTY"}, "is not in"),
        ({"known_hosts": "OTHER_KEY"}, "does not match"),
        ({"python": "/nonexistent/python3"}, "cannot run '/nonexistent/python3' on the board"),
        ({"python": "OLD_PYTHON"}, "is Python 3.6; the agent needs >= 3.8"),
    ],
    ids=["unreachable", "auth", "unknown-host", "host-key-mismatch", "no-python", "old-python"],
)
def test_failures_are_device_errors(
    sshd: Sshd, tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    if overrides.get("key_file") == "WRONG_KEY":
        overrides = {"key_file": str(keygen(tmp_path / "stranger"))}
    if overrides.get("python") == "OLD_PYTHON":  # a board with Python 3.6, as its interpreter reports it
        old = tmp_path / "python3.6"
        old.write_text(f'#!/bin/sh\necho \'{{"workdir": "{tmp_path}", "python": "3.6"}}\'\ncat >/dev/null\n')
        old.chmod(0o755)
        overrides = {"python": str(old)}
    if overrides.get("known_hosts") == "EMPTY":
        (tmp_path / "empty_known_hosts").write_text("")
        overrides = {"known_hosts": str(tmp_path / "empty_known_hosts")}
    if overrides.get("known_hosts") == "OTHER_KEY":
        other = keygen(tmp_path / "impostor").with_suffix(".pub").read_text().split()[:2]
        (tmp_path / "wrong_known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
        overrides = {"known_hosts": str(tmp_path / "wrong_known_hosts")}
    inventory = write_inventory(
        tmp_path / "devices.toml", sshd.inventory_entry("b", tmp_path / "w", **overrides)
    )
    proc = run_cli(
        "bench", str(demo_model_path()), "--device", "b", "--inventory", str(inventory), *FAST, home=tmp_path
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr and "device 'b'" in proc.stderr


def test_accept_new_pins_the_key(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    inventory = write_inventory(
        tmp_path / "devices.toml",
        sshd.inventory_entry("b", tmp_path / "w", known_hosts=str(known), host_key_policy="accept-new"),
    )
    proc = run_cli(
        "devices", "facts", "--device", "b", "--inventory", str(inventory), "--json", home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["device"] == "b"
    assert sshd.host_key_line.split()[2] in known.read_text()


def test_hostile_names_do_not_inject(sshd: Sshd, tmp_path: Path) -> None:
    workdir = tmp_path / "it's $(touch pwned); `id` ../x"
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("b; rm -rf /", workdir))
    model = tmp_path / "m'$(touch pwned); `id` ..x.onnx"
    model.write_bytes(demo_model_path().read_bytes())
    proc = run_cli(
        "bench",
        str(model),
        "--device",
        "b; rm -rf /",
        "--inventory",
        str(inventory),
        *FAST,
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "artifacts").is_dir()
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


def test_doctor_over_ssh(sshd: Sshd, tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("b", workdir))
    proc = run_cli(
        "devices", "doctor", "--device", "b", "--inventory", str(inventory), "--json", home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    checks = {c["item"]: c for c in report["checks"]}
    assert checks["onnxruntime"]["status"] == "ok" and report["install"] is None
    assert str(workdir) in checks["disk"]["detail"]


def test_fleet_keeps_every_devices_results_when_one_fails(sshd: Sshd, tmp_path: Path) -> None:
    write_inventory(
        tmp_path / "devices.toml",
        sshd.inventory_entry("pi-a", tmp_path / "a", tags=["lab"]),
        sshd.inventory_entry("pi-b", tmp_path / "b", tags=["lab"]),
        sshd.inventory_entry("pi-gone", tmp_path / "c", port=1, tags=["lab"]),
    )
    (tmp_path / "plan.toml").write_text(
        '[plan]\nname = "nightly"\nruns = 20\nmin_seconds = 0\ninventory = "devices.toml"\n'
        '[devices]\ntags = ["lab"]\n'
        f'[[model]]\npath = "{demo_model_path()}"\nrecipes = ["as-is", "fp16"]\n'
    )
    proc = run_cli("fleet", "run", str(tmp_path / "plan.toml"), "--json", home=tmp_path)
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)["devices"]
    assert report["pi-gone"]["failed"] and "unreachable" in report["pi-gone"]["errors"][0]["error"]
    for name in ("pi-a", "pi-b"):
        assert not report[name]["failed"] and len(report[name]["runs"]) == 2
    stored = json.loads(run_cli("history", "--json", home=tmp_path).stdout)
    assert sorted((r["device"]["name"], r["fleet"]["recipe"]) for r in stored) == [
        ("pi-a", "as-is"),
        ("pi-a", "fp16"),
        ("pi-b", "as-is"),
        ("pi-b", "fp16"),
    ]
    assert "device(s) failed: pi-gone" in proc.stderr


def test_an_interrupted_upload_resumes(sshd: Sshd, tmp_path: Path) -> None:
    workdir = tmp_path / "board"
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("b", workdir))
    model = demo_model_path().read_bytes()
    partial = workdir / "artifacts" / f"{sha256_file(demo_model_path())}.onnx.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(model[:100_000])  # what a dropped connection left behind
    proc = run_cli(
        "bench", str(demo_model_path()), "--device", "b", "--inventory", str(inventory), *FAST, home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["transfer"]["bytes_sent"] == len(model) - 100_000
    assert (partial.with_suffix("")).read_bytes() == model and not partial.exists()


def _kill_agent_when_benching(workdir: Path, deadline_s: float = 60) -> bool:
    """Kill the board-side agent started with this workdir, once it has a bench child running."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for proc_dir in Path("/proc").iterdir():
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().split(b"\0")
                children = (proc_dir / "task" / proc_dir.name / "children").read_text().split()
            except OSError:
                continue
            if b"--workdir" in cmdline and str(workdir).encode() in cmdline and children:
                time.sleep(0.5)
                os.kill(int(proc_dir.name), signal.SIGKILL)  # the agent dies mid-bench
                return True
        time.sleep(0.05)
    return False


def test_an_agent_killed_mid_run_fails_only_its_device(sshd: Sshd, tmp_path: Path) -> None:
    write_inventory(
        tmp_path / "devices.toml",
        sshd.inventory_entry("steady", tmp_path / "steady", tags=["lab"]),
        sshd.inventory_entry("doomed", tmp_path / "doomed", tags=["lab"]),
    )
    (tmp_path / "plan.toml").write_text(
        '[plan]\nruns = 20\nmin_seconds = 3\ninventory = "devices.toml"\n[devices]\ntags = ["lab"]\n'
        f'[[model]]\npath = "{demo_model_path()}"\n'
    )
    killed: list[bool] = []
    killer = threading.Thread(target=lambda: killed.append(_kill_agent_when_benching(tmp_path / "doomed")))
    killer.start()
    proc = run_cli("fleet", "run", str(tmp_path / "plan.toml"), "--json", home=tmp_path)
    killer.join()
    assert killed == [True]
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)["devices"]
    assert report["doomed"]["failed"] and "agent exited" in report["doomed"]["errors"][0]["error"]
    assert len(report["steady"]["runs"]) == 1
    stored = json.loads(run_cli("history", "--json", home=tmp_path).stdout)
    assert [r["device"]["name"] for r in stored] == ["steady"]  # nothing partial stored as a success


def test_fleet_works_at_most_max_parallel_devices_at_once(sshd: Sshd, tmp_path: Path) -> None:
    write_inventory(
        tmp_path / "devices.toml",
        *(sshd.inventory_entry(f"pi-{i}", tmp_path / f"w{i}", tags=["lab"]) for i in range(4)),
    )
    (tmp_path / "plan.toml").write_text(
        '[plan]\nruns = 20\nmin_seconds = 0.3\nmax_parallel = 2\ninventory = "devices.toml"\n'
        f'[devices]\ntags = ["lab"]\n[[model]]\npath = "{demo_model_path()}"\n'
    )
    plan = load_plan(tmp_path / "plan.toml")
    active: set[str] = set()
    most = 0
    lock = threading.Lock()

    def track(event: dict[str, object]) -> None:
        nonlocal most
        with lock:
            if event["phase"] == "start":
                active.add(str(event["device"]))
                most = max(most, len(active))
            elif event["phase"] == "done":
                active.discard(str(event["device"]))

    outcomes = run_plan(plan, tmp_path / "results.sqlite", track).outcomes
    assert [o.device for o in outcomes if o.results and not o.failed] == ["pi-0", "pi-1", "pi-2", "pi-3"]
    assert most == 2  # concurrent, and bounded

    proc = run_cli("fleet", "run", str(tmp_path / "plan.toml"), "--max-parallel", "1", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = proc.stderr.splitlines()
    assert "[0/4 devices] pi-0: 1/1 demo_digits.onnx [as-is]" in log
    assert log.index("[1/4 devices] pi-0: done, 1 result(s), 0 error(s)") < log.index(
        "[1/4 devices] pi-1: 1/1 demo_digits.onnx [as-is]"
    )  # one device at a time
