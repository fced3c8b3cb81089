"""What a user sees on stderr: progress counters (in a log and on a terminal), no other library's
log lines, and a warning when a bench runs more threads than the device has cores."""

from __future__ import annotations

import json
import os
import pty
import re
import sys
from pathlib import Path

import pytest

from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration

TIMED = re.compile(r"timed (\d+)/(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BENCH = ("--min-seconds", "1.5", "--runs", "100", "--processes", "2", "--no-store")


def assert_counts(text: str, n: int) -> None:
    """The `timed D/T` counters: D never above T, D never going back, the last D == T == n."""
    counts = [(int(done), int(total)) for done, total in TIMED.findall(text)]
    assert len(counts) >= 2, text
    assert all(done <= total for done, total in counts), counts
    dones = [done for done, _ in counts]
    assert dones == sorted(dones), counts
    assert counts[-1] == (n, n), counts


def test_progress_in_a_log_counts_up_to_the_total(mlp_model: Path, tmp_path: Path) -> None:
    proc = run_cli("bench", str(mlp_model), *BENCH, "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_counts(proc.stderr, json.loads(proc.stdout)["latency_ms"]["n"])


def test_progress_on_a_terminal_counts_up_to_the_total(mlp_model: Path, tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: edgekit on a pseudo-terminal, as in a user's shell
        os.environ["EDGEKIT_HOME"] = str(tmp_path)
        os.execv(sys.executable, [sys.executable, "-m", "edgekit.cli.main", "bench", str(mlp_model), *BENCH])
    output = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    n = int(re.search(r"n=(\d+)", ANSI.sub("", text)).group(1))  # type: ignore[union-attr]
    assert "\r\x1b[2K" in text  # the live line is rewritten in place, not appended to
    assert_counts(ANSI.sub("", text), n)


@pytest.mark.parametrize("recipe", ["int8-static:calib=entropy", "tflite-int8"])
def test_compress_prints_only_its_own_lines(tmp_path: Path, recipe: str) -> None:
    if recipe.startswith("tflite"):
        pytest.importorskip("onnx2tf")
    args = (
        "compress", str(demo_model_path()), "--recipe", recipe,
        "--calib", str(demo_calib_set_path()), "--eval", str(demo_test_set_path()), "--json",
    )  # fmt: skip
    proc = run_cli(*args, "-o", str(tmp_path / "quiet"), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)
    lines = proc.stderr.splitlines()
    assert lines and all(
        line.startswith(("recipe: ", "fidelity: ", "edgekit: warning: ")) for line in lines
    ), lines
    # The libraries do print, and EDGEKIT_DEBUG shows it: what the test above hides is real.
    if recipe.startswith("int8"):
        debug = run_cli(*args, "-o", str(tmp_path / "debug"), home=tmp_path, env={"EDGEKIT_DEBUG": "1"})
        assert debug.returncode == 0 and "Collecting tensor data and making histogram" in debug.stderr
        json.loads(debug.stdout)  # stdout still carries only the JSON


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edgekit: warning: ")]


FAST = ("--min-seconds", "0", "--runs", "20", "--warmup", "1", "--no-store")


@pytest.mark.skipif((os.cpu_count() or 1) >= 4, reason="needs a machine with fewer cores than a Pi 4's 4")
def test_a_profile_with_more_threads_than_the_machine_has_cores_warns(
    mlp_model: Path, tmp_path: Path
) -> None:
    cores = os.cpu_count()
    proc = run_cli("bench", str(mlp_model), "--profile", "raspberry-pi-4", *FAST, home=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    [warning] = warnings_of(proc.stderr)
    assert f"has {cores} cores but the bench runs 4 threads" in warning, warning
    assert "raspberry-pi-4's default_threads" in warning
    quiet = run_cli(
        "bench", str(mlp_model), "--profile", "raspberry-pi-4", "--threads", "1", *FAST, home=tmp_path
    )
    assert quiet.returncode in (0, 1), quiet.stderr
    assert warnings_of(quiet.stderr) == []


def test_threads_above_the_cores_warn_once(mlp_model: Path, tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    proc = run_cli("bench", str(mlp_model), "--threads", str(cores + 1), *FAST, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [warning] = warnings_of(proc.stderr)
    assert f"has {cores} cores but the bench runs {cores + 1} threads (--threads)" in warning


def test_tflite_bench_prints_only_its_own_lines(tmp_path: Path) -> None:
    """Reading a .tflite model on the host opens a TFLite interpreter, which logs "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU." on file descriptor 2: hidden like every library's."""
    pytest.importorskip("ai_edge_litert")
    model = Path(__file__).resolve().parents[1] / "fuzz" / "data" / "tiny.tflite"
    proc = run_cli("bench", str(model), *FAST, "--processes", "1", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "INFO:" not in proc.stderr and "XNNPACK" not in proc.stderr, proc.stderr
