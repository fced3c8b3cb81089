"""`edgekit optimize --provider`: a candidate is a recipe on a provider, benched on the device with
it (real agent on `local`, real onnxruntime; onnxruntime-ggml is the plugin provider that runs
here); a provider the device lacks is exit 3 before any candidate is made."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from edgekit.core.errors import UsageError
from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from edgekit.optimize.search import OptimizeOptions, optimize
from edgekit.optimize.state import BASELINE
from edgekit.transport.board import board_for
from edgekit.transport.devices import Device
from edgekit.transport.local import LocalTransport
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration
HAS_GGML = importlib.util.find_spec("onnxruntime_ggml") is not None
FAST = ("--runs", "50", "--min-seconds", "0.2", "--confirm", "0", "--no-store", "--json")
DATA = ("--eval", str(demo_test_set_path()), "--calib", str(demo_calib_set_path()))


def _optimize(home: Path, out: Path, *extra: str) -> tuple[int, dict, str]:
    proc = run_cli("optimize", str(demo_model_path()), *DATA, "-o", str(out), *FAST, *extra, home=home)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout else {}), proc.stderr


@pytest.mark.skipif(not HAS_GGML, reason="onnxruntime-ggml not installed (scripts/test)")
def test_candidates_are_recipes_on_the_providers_that_take_them(tmp_path: Path) -> None:
    recipes = ("--recipe", "fp16", "--recipe", "int8-dynamic", "--recipe", "int8-static")
    code, report, stderr = _optimize(
        tmp_path, tmp_path / "out", *recipes, "--provider", "cpu", "--provider", "ggml"
    )
    assert code in (0, 1), stderr
    local = report["devices"]["local"]
    providers = {c["name"]: c["provider"] for c in local["candidates"]}
    assert providers == {
        "float": "cpu",  # the reference, on the first provider
        "float@provider=ggml": "ggml",
        "fp16@provider=cpu": "cpu",
        "fp16@provider=ggml": "ggml",
        "int8-dynamic@provider=cpu": "cpu",  # dynamic int8 and QDQ: not on ggml
        "int8-static@provider=cpu": "cpu",
    }
    float_ = next(c for c in local["candidates"] if c["name"] == "float")
    assert float_["status"] == BASELINE
    assert all(c["latency_p50_ms"] for c in local["candidates"])  # each measured with its provider
    assert set(local["front"]) <= set(providers) and local["chosen"] in providers


def test_a_provider_the_device_lacks_is_exit_3_before_any_candidate(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, report, stderr = _optimize(tmp_path, out, "--provider", "cpu", "--provider", "cuda")
    assert code == 3, stderr
    local = report["devices"]["local"]
    assert "ProviderMissing" in local["error"] and "onnxruntime-gpu" in local["error"]
    assert [c["name"] for c in local["candidates"]] == ["float"]  # the cpu reference only
    assert not (out / "candidates").exists()  # nothing compressed


def test_providers_for_a_board_that_runs_tflite_are_exit_2_before_any_work(tmp_path: Path) -> None:
    zero = Device(name="zero", profile="raspberry-pi-zero-2w", kind="local",
                  transport_factory=lambda: LocalTransport("zero"))  # fmt: skip
    options = OptimizeOptions(
        model=demo_model_path(),
        eval=demo_test_set_path(),
        out_dir=tmp_path / "out",
        providers=("cpu",),
    )
    with pytest.raises(UsageError, match=r"zero run\(s\) TFLite models"):
        optimize(options, [board_for(zero)])
    assert not (tmp_path / "out").exists()
