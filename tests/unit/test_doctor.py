from __future__ import annotations

from edgekit.doctor import diagnose

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
