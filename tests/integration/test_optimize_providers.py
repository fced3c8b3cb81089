"""`edgekit optimize --provider`: a candidate is a recipe on a provider, benched on the device with
it (real agent on `local`, real onnxruntime; onnxruntime-ggml is the plugin provider that runs
here); a provider the device lacks is exit 3 before any candidate is made."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from edgekit.compress import parse_recipe
from edgekit.core.errors import EdgekitWarning, UsageError
from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from edgekit.optimize.search import OptimizeOptions, optimize
from edgekit.optimize.state import BASELINE, REJECTED
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
    # ggml takes none of this model's nodes: its candidates are CPU runs, shown as such (0%) and
    # kept off the front and the pick
    fractions = {c["name"]: c["accelerated_fraction"] for c in local["candidates"]}
    assert fractions["float@provider=ggml"] == 0 and fractions["fp16@provider=ggml"] == 0
    on_ggml = [c for c in local["candidates"] if c["provider"] == "ggml"]
    assert all(c["status"] == REJECTED and "ggml ran none of its nodes" in c["reason"] for c in on_ggml)
    assert set(local["front"]) <= set(providers) - {c["name"] for c in on_ggml}
    assert local["chosen"] in providers and providers[local["chosen"]] == "cpu"
    assert "note: float@provider=ggml, fp16@provider=ggml: the provider asked for ran none" in stderr


@pytest.mark.skipif(not HAS_GGML, reason="onnxruntime-ggml not installed (scripts/test)")
def test_a_recipe_no_provider_takes_is_said_and_alone_is_exit_2_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = _optimize(tmp_path, out, "--provider", "ggml", "--recipe", "int8-dynamic")
    assert code == 2, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("edgekit: error: --recipe int8-dynamic: no --provider of ggml takes")
    assert "runs on cpu only" in line and not out.exists()  # before any work
    options = OptimizeOptions(
        model=demo_model_path(),
        eval=demo_test_set_path(),
        out_dir=out,
        recipes=(parse_recipe("int8-dynamic"), parse_recipe("int8-static"), parse_recipe("fp16")),
        providers=("ggml",),
    )
    with pytest.warns(EdgekitWarning) as warned:
        options.check_pairing()  # fp16 is left: the others each say why they are not tried
    assert [str(w.message).split(":")[0] for w in warned] == ["--recipe int8-dynamic", "--recipe int8-static"]
    assert "int8 QDQ graph runs as int8 on cpu, openvino, qnn, tensorrt, xnnpack only" in str(
        warned[1].message
    )


def test_a_provider_the_device_lacks_is_exit_3_before_the_float_model_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, report, stderr = _optimize(tmp_path, out, "--provider", "cpu", "--provider", "cuda")
    assert code == 3, stderr
    last = stderr.strip().splitlines()[-1]  # a failing exit ends with its one error line
    assert last.startswith("edgekit: error: local: device 'local': provider check failed: ProviderMissing")
    assert stderr.count("edgekit: error:") == 1
    local = report["devices"]["local"]
    assert "ProviderMissing" in local["error"] and "onnxruntime-gpu" in local["error"]
    assert local["candidates"] == []  # found missing before even the float model ran
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
    with pytest.raises(UsageError, match=r"zero runs TFLite models \(profile"):
        optimize(options, [board_for(zero)])
    assert not (tmp_path / "out").exists()
