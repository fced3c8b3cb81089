from __future__ import annotations

from edgekit.judge.doctor import diagnose

FACTS = {
    "python": "3.11.2",
    "numpy": "1.26.4",
    "runtimes": {"onnxruntime": None, "tflite_runtime": None, "ai_edge_litert": "2.3.0"},
    "disk_free_bytes": 100 * 2**20,
    "workdir": "/home/pi/.edgekit",
    "memory_available_bytes": 3 * 2**30,
    "governor": "ondemand",
}


def test_missing_runtime_gives_the_exact_install_line() -> None:
    checks, install = diagnose(FACTS, runtime="onnxruntime", python="/usr/bin/python3")
    status = {c.item: c.status for c in checks}
    assert status == {
        "python": "ok",
        "numpy": "ok",
        "onnxruntime": "missing",
        "tflite": "ok",
        "disk": "warn",
        "memory": "ok",
        "governor": "warn",
    }
    assert install == "/usr/bin/python3 -m pip install onnxruntime"


def test_nothing_missing_for_a_tflite_board() -> None:
    checks, install = diagnose(
        {**FACTS, "governor": "performance", "disk_free_bytes": 2**33}, runtime="tflite"
    )
    assert install is None
    assert {c.item: c.status for c in checks}["onnxruntime"] == "warn"


def test_bare_board() -> None:
    bare = {"python": "3.9.2", "runtimes": {}, "numpy": None}
    _, install = diagnose(bare, runtime="onnxruntime", python="python 3")
    assert install == "'python 3' -m pip install numpy onnxruntime"


def test_power_sensors_found_missing_and_others() -> None:
    sensors = {
        "power_sensors": [
            {"sensor": "ina3221:VDD_IN", "ok": True, "kind": "power", "value": 4.9, "source": "hwmon3"},
            {"sensor": "rapl:package-0", "ok": False, "reason": "no powercap zone named package-0"},
        ],
        "power_discovered": [
            {"sensor": "ina3221:VDD_IN", "ok": True},
            {"sensor": "ina3221:VDD_SOC", "ok": True},
            {"sensor": "rapl:core", "ok": False, "reason": "EACCES"},
        ],
    }
    checks, _ = diagnose(FACTS, "tflite", sensors=sensors, profile_power=["ina3221:VDD_IN", "rapl:package-0"])
    by_item = {c.item: c for c in checks}
    assert (
        by_item["power ina3221:VDD_IN"].status == "ok" and "4.900 W" in by_item["power ina3221:VDD_IN"].detail
    )
    assert by_item["power rapl:package-0"].status == "warn"
    assert "no powercap zone" in by_item["power rapl:package-0"].detail
    assert by_item["other power sensors"].detail == "ina3221:VDD_SOC, rapl:core (unreadable)"
    none, _ = diagnose(FACTS, "tflite", sensors={}, profile_power=[])
    assert {c.item: c.status for c in none}["power"] == "warn"


def test_a_missing_accelerator_the_profile_prefers_is_a_warning_others_are_absent() -> None:
    from edgekit.judge.doctor import accelerator_checks

    listed = [
        {
            "kind": "provider",
            "name": "tensorrt",
            "status": "missing",
            "detail": "no TensorRT",
            "install": "x",
        },
        {"kind": "provider", "name": "qnn", "status": "missing", "detail": "no QNN", "install": "y"},
        {"kind": "provider", "name": "openvino", "status": "no_device", "detail": "AMD CPU"},
        {"kind": "delegate", "name": "xnnpack", "status": "available", "detail": "built in"},
    ]
    checks = {c.item: c for c in accelerator_checks(listed, ["tensorrt", "cuda", "cpu"])}
    assert [checks[k].status for k in checks] == ["warn", "absent", "absent", "ok"]
    assert checks["provider tensorrt"].detail == "no TensorRT; install: x"
    assert checks["provider openvino"].detail == "no device here: AMD CPU"
