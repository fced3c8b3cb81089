"""`edgekit bench` accelerator flags, run as a user runs them: malformed flags are usage errors
(exit 2) before any device is touched, and a provider asked for explicitly never ends as a CPU
run labelled with it (exit 3)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from edgekit.data import demo_model_path
from tests.cli_run import run_cli
from tests.integration.test_cli import assert_one_line_error

pytestmark = pytest.mark.integration

TINY_TFLITE = Path(__file__).resolve().parent.parent / "fuzz" / "data" / "tiny.tflite"
QUICK = ("--runs", "5", "--warmup", "0", "--min-seconds", "0", "--processes", "1", "--no-store")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--provider", "cuda", "--provider-option", "device_id"), "expected KEY=VALUE"),
        (
            ("--provider", "cuda", "--provider-option", "tensorrt.trt_fp16_enable=True"),
            "add --provider tensorrt",
        ),
        (("--delegate", "xnnpack"), "apply to TFLite models"),
        (("--provider-option", "device_id=0"), "name one with --provider"),
    ],
)
def test_malformed_onnx_accelerator_flags_exit_2(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    proc = run_cli("bench", str(demo_model_path()), *args, *QUICK, home=tmp_path)
    assert_one_line_error(proc, 2, fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--delegate-option", "num_threads"), "expected KEY=VALUE"),
        (("--delegate", "xnnpak"), "did you mean 'xnnpack'"),
        (("--delegate", "none", "--delegate-option", "a=b"), "not to 'none'"),
        (("--provider", "cpu"), "apply to ONNX models"),
    ],
)
def test_malformed_tflite_accelerator_flags_exit_2(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    proc = run_cli("bench", str(TINY_TFLITE), *args, *QUICK, home=tmp_path)
    assert_one_line_error(proc, 2, fragment)


def test_an_explicit_provider_the_device_lacks_is_exit_3_never_a_cpu_run(tmp_path: Path) -> None:
    """This machine's onnxruntime has no CUDA: the run must fail on the device side, naming the
    provider, with nothing on stdout (an agent without accelerator support is refused by the host;
    one with it answers ProviderMissing)."""
    proc = run_cli("bench", str(demo_model_path()), "--provider", "cuda", *QUICK, "--json", home=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    assert "cuda" in proc.stderr.lower()
    assert proc.stderr.count("edgekit: error:") == 1


def test_bench_reports_the_cold_start_split(tmp_path: Path) -> None:
    """onnxruntime's session_load and session_init reach the result (--json) and the printout."""
    proc = run_cli("bench", str(demo_model_path()), "--provider", "cpu", *QUICK, "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cold = json.loads(proc.stdout)["cold_start_ms"]
    assert cold["session_load"] > 0 and cold["session_init"] > 0
    assert cold["session_load"] + cold["session_init"] <= cold["load"]
    proc = run_cli("bench", str(demo_model_path()), *QUICK, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    split = r"cold start ms: load [\d.,]+ \(session load [\d.]+, session init [\d.,]+\)"
    assert re.search(split, proc.stdout), proc.stdout


HAS_GGML = importlib.util.find_spec("onnxruntime_ggml") is not None
needs_ggml = pytest.mark.skipif(not HAS_GGML, reason="onnxruntime-ggml not installed (scripts/test)")
GGML_QUIET = {"ORT_GGML_LOG": "warn"}


@needs_ggml
def test_an_explicit_provider_that_ran_no_node_is_a_warning_and_the_title_says_cpu(tmp_path: Path) -> None:
    """ggml takes none of the demo model's nodes: the numbers are the CPU's, and the output says so."""
    proc = run_cli(
        "bench", str(demo_model_path()), "--provider", "ggml", *QUICK, home=tmp_path, env=GGML_QUIET
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "edgekit: warning: --provider ggml ran no node of this model (all 10 on the CPU): "
        "these are CPU numbers" in proc.stderr
    )
    assert re.search(r"onnxruntime [\d.]+ on CPU, threads=", proc.stdout), proc.stdout
    assert "min_accelerated_fraction" in proc.stdout  # an accelerator was asked for


def test_a_plain_cpu_run_has_no_provider_warning_nor_fraction_row(tmp_path: Path) -> None:
    proc = run_cli("bench", str(demo_model_path()), *QUICK, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    assert "min_accelerated_fraction" not in proc.stdout


def test_an_option_the_provider_did_not_take_is_a_warning_not_applied(tmp_path: Path) -> None:
    proc = run_cli(
        "bench",
        str(demo_model_path()),
        "--provider",
        "cpu",
        "--provider-option",
        "foo=1",
        *QUICK,
        "--json",
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "edgekit: warning: provider cpu did not take option foo=1 "
        "(onnxruntime ignores options a provider does not know)" in proc.stderr
    )
    runtime = json.loads(proc.stdout)["runtime"]
    assert runtime["provider_options"] == {} and runtime["ignored_provider_options"] == {"cpu": {"foo": "1"}}


@needs_ggml
def test_a_provider_refusing_the_model_is_exit_3_naming_it(tmp_path: Path) -> None:
    from tests.integration.test_providers import mlp

    model = mlp(tmp_path / "mlp.onnx")
    proc = run_cli(
        "bench",
        str(model),
        "--provider",
        "ggml",
        "--provider-option",
        "device=gpu",
        *QUICK,
        home=tmp_path,
        env=GGML_QUIET,
    )
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgekit: error:")]
    assert len(errors) == 1 and "ProviderFailed: provider ggml refused the session" in errors[0], proc.stderr
    assert "no gpu backend is available" in errors[0]
    assert ".cc:" not in proc.stderr and "cannot load" not in proc.stderr
