"""An emulated Raspberry Pi 4 (edgekit lab: aarch64 Debian under qemu user-mode, its own sshd on
127.0.0.1) used like a real board: facts, doctor, fp32 / int8 / TFLite int8 benchmarks and the HIL
example suite. One board per module; the rootfs is built once and cached in $EDGEKIT_LAB_CACHE
(default ~/.cache/edgekit-lab), so later runs start the board in seconds.

Needs root, qemu-user-static, debootstrap and binfmt_misc (LAB-NOTES.md: the setup lines for
scripts/test). Skipped with the exact reason otherwise; as root a missing part is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from edgekit.judge.budgets import EMULATED_REASON
from edgekit.lab import preflight
from tests.cli_run import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.lab]
REPO = Path(__file__).resolve().parents[2]
BOARD = "pi4-emu"
FEW_RUNS = ["--runs", "15", "--min-seconds", "0", "--warmup", "1", "--json"]  # ~200x slower than native


@dataclass(frozen=True)
class LabBoard:
    name: str
    home: Path
    inventory: Path
    env: dict[str, str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, home=self.home, env=self.env)

    def bench(self, model: Path) -> dict[str, object]:
        proc = self.cli(
            "bench", str(model), "--device", self.name, "--inventory", str(self.inventory), *FEW_RUNS
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)


def _missing_reason() -> str | None:
    gaps = preflight.missing()
    return preflight.describe(gaps) if gaps else None


@pytest.fixture(scope="module")
def lab_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabBoard]:
    reason = _missing_reason()
    if reason is not None:
        if os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
            pytest.skip(reason)
        pytest.fail(
            f"{reason}; as root on Debian the test setup (LAB-NOTES.md) provides it: a failure, not a skip"
        )
    home = tmp_path_factory.mktemp("lab-home")
    cache = os.environ.get("EDGEKIT_LAB_CACHE") or str(Path.home() / ".cache" / "edgekit-lab")
    board = LabBoard(BOARD, home, home / "devices.toml", {"EDGEKIT_LAB_CACHE": cache})
    up = board.cli(
        "lab", "up", "raspberry-pi-4", "--name", BOARD, "--inventory", str(board.inventory), "--json"
    )
    assert up.returncode == 0, up.stderr[-3000:]
    try:
        yield board
    finally:
        down = board.cli("lab", "down", BOARD, "--inventory", str(board.inventory))
        assert down.returncode == 0, down.stderr


def test_the_board_is_aarch64_emulated_and_board_shaped(lab_board: LabBoard) -> None:
    proc = lab_board.cli(
        "devices", "facts", "--device", BOARD, "--inventory", str(lab_board.inventory), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["machine"] == "aarch64"
    assert facts["emulated"] is True
    assert facts["emulation"]["emulator"] == "qemu-user"
    assert facts["emulation"]["stands_for"] == "raspberry-pi-4"
    assert facts["cores_online"] == [0, 1, 2, 3]  # the Pi 4's four cores, from the board's sysfs
    assert facts["governor"] == "performance"
    assert facts["temperatures_c"] == {"thermal_zone0:cpu-thermal": 45.0}
    assert facts["throttled"]["source"] == "rpi-firmware-sysfs" and facts["throttled"]["value"] is False


def test_doctor_finds_the_aarch64_runtimes_and_labels_the_emulation(lab_board: LabBoard) -> None:
    proc = lab_board.cli(
        "devices", "doctor", "--device", BOARD, "--inventory", str(lab_board.inventory), "--json"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["item"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["onnxruntime"]["status"] == "ok"
    assert checks["tflite"]["status"] == "ok"  # ai-edge-litert's aarch64 wheel
    assert checks["emulation"]["status"] == "warn"
    assert "timings are not the board's" in checks["emulation"]["detail"]


def _assert_emulated_result(result: dict[str, object], runtime: str) -> dict[str, dict[str, object]]:
    device, runtime_info = result["device"], result["runtime"]
    assert isinstance(device, dict) and isinstance(runtime_info, dict)
    assert device["machine"] == "aarch64" and device["emulated"] is True
    assert runtime_info["name"] == runtime
    checks = {c["metric"]: c for c in result["budget"]["checks"]}  # type: ignore[index]
    assert checks["latency_p50_ms"]["value"] is not None
    assert checks["latency_p50_ms"]["verdict"] == "unknown"
    assert checks["latency_p50_ms"]["reason"] == EMULATED_REASON
    assert checks["model_size_mb"]["verdict"] == "pass"  # not a timing: still judged
    return checks


def test_bench_fp32_runs_on_the_aarch64_onnxruntime(lab_board: LabBoard) -> None:
    result = lab_board.bench(demo_model_path())
    _assert_emulated_result(result, "onnxruntime")
    assert result["latency_ms"]["n"] == 15  # type: ignore[index]
    assert result["budget"]["verdict"] == "unknown"  # type: ignore[index]
    table = lab_board.cli(
        "bench",
        str(demo_model_path()),
        "--device",
        BOARD,
        "--inventory",
        str(lab_board.inventory),
        "--runs",
        "15",
        "--min-seconds",
        "0",
        "--no-store",
    )
    assert table.returncode == 0, table.stderr
    assert "EMULATED" in table.stdout


def test_bench_int8_with_the_pi4_scheme(lab_board: LabBoard, tmp_path: Path) -> None:
    out = tmp_path / "digits-int8"
    proc = lab_board.cli(
        "compress",
        str(demo_model_path()),
        "-o",
        str(out),
        "--recipe",
        "int8-static",
        "--target",
        "raspberry-pi-4",
        "--calib",
        str(demo_calib_set_path()),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert "s8s8" in json.dumps(manifest["recipe"])  # the ARM profile's scheme, not x86's u8s8
    result = lab_board.bench(out)
    _assert_emulated_result(result, "onnxruntime")


def test_bench_tflite_int8_on_the_aarch64_litert(lab_board: LabBoard, tmp_path: Path) -> None:
    if importlib.util.find_spec("onnx2tf") is None:
        pytest.skip("the tflite extra (onnx2tf, TensorFlow) is not installed on the host")
    out = tmp_path / "digits-tflite"
    proc = lab_board.cli(
        "compress",
        str(demo_model_path()),
        "-o",
        str(out),
        "--recipe",
        "tflite-int8",
        "--calib",
        str(demo_calib_set_path()),
        "--eval",
        str(demo_test_set_path()),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = lab_board.bench(out)
    _assert_emulated_result(result, "tflite")
    assert list(result["inputs"].values()) == [{"shape": [1, 8, 8, 1], "dtype": "int8"}]  # type: ignore[union-attr]


def test_the_hil_example_suite_passes_on_the_emulated_board(lab_board: LabBoard) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "tests/hil"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--edge-inventory",
            str(lab_board.inventory),
            "--edge-devices",
            BOARD,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "EDGEKIT_HOME": str(lab_board.home), **lab_board.env},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout


def test_down_after_a_crash_removes_processes_mounts_and_entry(lab_board: LabBoard) -> None:
    """A second board whose sshd dies by SIGKILL (as in a crash): `lab down` still cleans up all of it."""
    name = "crashed-emu"
    up = lab_board.cli(
        "lab", "up", "raspberry-pi-4", "--name", name, "--inventory", str(lab_board.inventory), "--json"
    )
    assert up.returncode == 0, up.stderr[-2000:]
    state = json.loads(up.stdout)
    os.kill(state["pid"], 9)
    root = Path(state["root"])
    assert any(
        line.split()[1].startswith(str(root)) for line in Path("/proc/self/mounts").read_text().splitlines()
    )
    listed = json.loads(lab_board.cli("lab", "list", "--json").stdout)
    assert {b["name"]: b["running"] for b in listed}[name] is False
    down = lab_board.cli("lab", "down", name, "--inventory", str(lab_board.inventory))
    assert down.returncode == 0, down.stderr
    assert not root.parent.exists()
    assert str(root) not in Path("/proc/self/mounts").read_text()
    assert f'name = "{name}"' not in lab_board.inventory.read_text()
    assert f'name = "{BOARD}"' in lab_board.inventory.read_text()  # the other board's entry is kept
