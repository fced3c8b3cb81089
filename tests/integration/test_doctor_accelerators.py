"""`edgekit devices doctor` lists the board's accelerators through the real agent on `local`:
onnxruntime providers (runtimes/providers.PROVIDERS) and TFLite delegates (runtimes/tflite), the
missing ones with their exact install lines."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from edgekit_agent.runtimes.providers import PROVIDERS
from edgekit_agent.runtimes.tflite import EDGETPU_INSTALL, edgetpu_library

from tests.cli_run import run_cli


def test_doctor_lists_providers_and_delegates_with_install_lines(tmp_path: Path) -> None:
    proc = run_cli("devices", "doctor", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # nothing a plugin library prints reaches stdout
    found = {(a["kind"], a["name"]): a for a in report["accelerators"]}
    assert [name for kind, name in found if kind == "provider"] == list(PROVIDERS)
    assert found["provider", "cpu"]["status"] == "available"
    for name in ("cuda", "tensorrt"):
        entry = found["provider", name]
        assert entry["status"] == "missing", entry
        assert entry["install"] == PROVIDERS[name].install
        assert entry["library"] == PROVIDERS[name].library
    if importlib.util.find_spec("onnxruntime_ggml"):  # the plugin EP that runs here (test stand-in)
        assert found["provider", "ggml"]["status"] == "available"
        assert "0.2.0" in found["provider", "ggml"]["detail"]
    openvino = found["provider", "openvino"]
    if importlib.util.find_spec("onnxruntime_ep_openvino"):  # registers, but an AMD CPU is no device
        assert openvino["status"] in ("available", "no_device"), openvino
    else:
        assert (openvino["status"], openvino["install"]) == ("missing", PROVIDERS["openvino"].install)
    assert found["delegate", "xnnpack"]["status"] == "available"  # built into ai-edge-litert
    edgetpu = found["delegate", "edgetpu"]
    assert (edgetpu["status"], edgetpu["library"], edgetpu["install"]) == (
        "missing",
        edgetpu_library(),
        EDGETPU_INSTALL,
    )
    checks = {c["item"]: c for c in report["checks"]}
    assert checks["provider cpu"]["status"] == "ok"
    assert checks["provider cuda"]["status"] == "absent"  # a missing accelerator does not fail doctor
    assert checks["provider cuda"]["detail"].endswith("install: " + PROVIDERS["cuda"].install)


def test_doctor_table_shows_accelerators(tmp_path: Path) -> None:
    proc = run_cli("devices", "doctor", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "provider tensorrt" in proc.stdout and "delegate edgetpu" in proc.stdout
    assert "libedgetpu1-std" in proc.stdout
