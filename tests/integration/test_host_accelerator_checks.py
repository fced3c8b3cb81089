"""A bad provider name or delegate option is exit 2 on the host, before any device is contacted:
bench, profiles, optimize and fleet plans, run as a user runs them. The device here is an
inventory entry at 127.0.0.1 port 1, where nothing listens: contacting it would be exit 3."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekit.data import demo_model_path, demo_test_set_path
from tests.cli_run import run_cli
from tests.integration.test_cli import assert_one_line_error

pytestmark = pytest.mark.integration

CNN_TFLITE = Path(__file__).resolve().parent.parent / "data" / "tflite" / "cnn.tflite"
QUICK = ("--runs", "5", "--warmup", "0", "--min-seconds", "0", "--processes", "1", "--no-store")
NOWHERE = '[[device]]\nname = "nowhere"\nhost = "127.0.0.1"\nport = 1\n'


def home_with_unreachable_device(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "devices.toml").write_text(NOWHERE)
    return home


@pytest.mark.parametrize(
    ("model", "args", "fragment"),
    [
        (demo_model_path(), ("--provider", "foo"), "unknown execution provider"),
        (demo_model_path(), ("--provider", "GgmlExecutionProvider"), "did you mean 'ggml'"),
        (demo_model_path(), ("--provider", "cuda", "--provider", "CUDAExecutionProvider"), "given twice"),
        (demo_model_path(), ("--provider", "cpu", "--provider-option", ".x=1"), "no provider before"),
        (CNN_TFLITE, ("--delegate", "xnnpack", "--delegate-option", "num_threads=2"), "--threads"),
        (CNN_TFLITE, ("--delegate-option", "num_threads=2"), "not to 'default'"),
        (CNN_TFLITE, ("--delegate", "xnnpack", "--delegate", "none"), "--delegate given 2 times"),
    ],
)
def test_bad_accelerator_values_are_exit_2_before_the_device(
    tmp_path: Path, model: Path, args: tuple[str, ...], fragment: str
) -> None:
    home = home_with_unreachable_device(tmp_path)
    proc = run_cli("bench", str(model), "--device", "nowhere", *args, *QUICK, home=home)
    assert_one_line_error(proc, 2, fragment)
    assert "nowhere" not in proc.stderr


def test_a_profile_with_an_unknown_provider_is_exit_2_at_show(tmp_path: Path) -> None:
    home = home_with_unreachable_device(tmp_path)
    (home / "profiles").mkdir()
    builtin = Path(__file__).resolve().parents[2] / "device_profiles" / "local.toml"
    (home / "profiles" / "mine.toml").write_text(
        builtin.read_text().replace('name = "local"', 'name = "mine"')
        + '\n[accelerators]\nproviders = ["tensorrt", "foo"]\n'
    )
    proc = run_cli("profiles", "show", "mine", home=home)
    assert_one_line_error(proc, 2, "unknown execution provider")


def test_optimize_with_an_unknown_provider_is_exit_2(tmp_path: Path) -> None:
    proc = run_cli(
        "optimize",
        str(demo_model_path()),
        "--eval",
        str(demo_test_set_path()),
        "-o",
        str(tmp_path / "out"),
        "--provider",
        "foo",
        home=home_with_unreachable_device(tmp_path),
    )
    assert_one_line_error(proc, 2, "unknown execution provider")


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        ('providers = ["foo"]\n', "model[1].providers"),
        ('delegate = "xnnpack"\ndelegate_options = { num_threads = "2" }\n', "model[1]"),
    ],
)
def test_a_fleet_plan_with_a_bad_value_in_its_second_model_is_exit_2_before_any_device(
    tmp_path: Path, keys: str, fragment: str
) -> None:
    home = home_with_unreachable_device(tmp_path)
    shutil.copy(demo_model_path(), tmp_path / "m.onnx")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\n[devices]\nnames = ["nowhere"]\n[[model]]\npath = "m.onnx"\n'
        f'[[model]]\npath = "m.onnx"\n{keys}'
    )
    proc = run_cli("fleet", "run", str(plan), "--store", str(tmp_path / "r.sqlite"), home=home)
    assert_one_line_error(proc, 2, fragment)
    assert "nowhere" not in proc.stderr
