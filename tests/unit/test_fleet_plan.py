from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekit.core.errors import ConfigError, UsageError
from edgekit.data import demo_model_path
from edgekit.measure.fleet import load_plan

INVENTORY = """
[[device]]
name = "pi-a"
host = "10.0.0.1"
profile = "raspberry-pi-4"
tags = ["lab"]

[[device]]
name = "pi-b"
host = "10.0.0.2"
tags = ["home"]
"""


def plan(tmp_path: Path, body: str) -> Path:
    (tmp_path / "devices.toml").write_text(INVENTORY)
    shutil.copy(demo_model_path(), tmp_path / "m.onnx")
    path = tmp_path / "plan.toml"
    path.write_text('[plan]\ninventory = "devices.toml"\n' + body)
    return path


def test_devices_by_name_and_tag_and_cells(tmp_path: Path) -> None:
    loaded = load_plan(
        plan(
            tmp_path,
            '[devices]\nnames = ["local"]\ntags = ["lab"]\n'
            '[[model]]\npath = "m.onnx"\nrecipes = ["as-is", "int8-dynamic"]\n',
        )
    )
    assert [d.name for d in loaded.devices] == ["local", "pi-a"]
    assert loaded.devices[1].profile == "raspberry-pi-4"
    assert [(c.model.name, c.recipe) for c in loaded.cells] == [
        ("m.onnx", "as-is"),
        ("m.onnx", "int8-dynamic"),
    ]


def test_plan_processes_and_rounds_reach_the_bench_options(tmp_path: Path) -> None:
    body = '[devices]\nnames = ["local"]\n[[model]]\npath = "m.onnx"\n'
    assert load_plan(plan(tmp_path, body)).options.processes == 2  # the bench default
    assert load_plan(plan(tmp_path, body)).options.resolved_rounds() == 4
    path = plan(tmp_path, body)
    path.write_text(path.read_text().replace("[plan]\n", "[plan]\nprocesses = 3\nrounds = 5\n"))
    options = load_plan(path).options
    assert (options.processes, options.rounds) == (3, 5)
    path.write_text(path.read_text().replace("processes = 3", "processes = 0"))
    with pytest.raises(ConfigError, match="processes"):
        load_plan(path)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ('[devices]\nnames = ["pi-z"]\n[[model]]\npath = "m.onnx"\n', ConfigError, "unknown device(s) pi-z"),
        ('[devices]\ntags = ["none"]\n[[model]]\npath = "m.onnx"\n', ConfigError, "selects no device"),
        (
            '[devices]\ntags = ["lab"]\n[[model]]\npath = "m.onnx"\nrecipes = ["int9"]\n',
            UsageError,
            "unknown recipe",
        ),
        ('[devices]\ntags = ["lab"]\n[[model]]\nfile = "m.onnx"\n', ConfigError, "unknown key 'file'"),
        (
            '[devices]\ntags = ["lab"]\n[[model]]\npath = "m.onnx"\n[[model]]\npath = "fl/nosuch.onnx"\n',
            ConfigError,
            "plan.toml: model[1].path: fl/nosuch.onnx: no such file",
        ),
        (
            '[devices]\ntags = ["lab"]\n[[model]]\npath = "m.onnx"\ncalib = "nosuch.npz"\n',
            ConfigError,
            "plan.toml: model[0].calib: nosuch.npz: no such file or folder",
        ),
        (
            '[devices]\ntags = ["lab"]\n[[model]]\npath = "m.onnx"\n'
            'recipes = ["as-is", "prune-channels:0.5+int8-static"]\n',
            ConfigError,
            "plan.toml: model[0].recipes: 'prune-channels:0.5+int8-static' needs calibration data",
        ),
    ],
)
def test_bad_plans_fail_before_any_device(tmp_path: Path, body: str, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        load_plan(plan(tmp_path, body))
    assert message in str(info.value)


def test_plan_accelerators_are_every_cells_default_and_a_model_table_replaces_them(tmp_path: Path) -> None:
    path = plan(
        tmp_path,
        'providers = ["tensorrt", "cpu"]\ndelegate = "xnnpack"\nfresh_engine = true\n'
        '[plan.provider_options.tensorrt]\ntrt_fp16_enable = "True"\n'
        '[devices]\ntags = ["lab"]\n'
        '[[model]]\npath = "m.onnx"\n'
        '[[model]]\npath = "m.onnx"\nproviders = ["cuda"]\ndelegate = "none"\n'
        # a provider of the plan's
        '[[model]]\npath = "m.onnx"\nprovider_options = { cpu = { arena = "0" } }\n',
    )
    first, second, third = (cell.accelerators for cell in load_plan(path).cells)
    assert first.providers == ("tensorrt", "cpu")
    assert first.provider_options == ("tensorrt.trt_fp16_enable=True",)
    assert (first.delegate, first.fresh_engine) == ("xnnpack", True)
    # the model's providers replace the plan's; the plan's tensorrt options do not follow them
    assert (second.providers, second.provider_options, second.delegate) == (("cuda",), (), "none")
    assert second.fresh_engine is True
    assert third.provider_options == ("cpu.arena=0",)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            '[[model]]\npath = "m.onnx"\n[[model]]\npath = "m.onnx"\nproviders = ["cu da"]\n',
            "model[1].providers",
        ),
        ('[[model]]\npath = "m.onnx"\nproviders = ["cpu", "cpu"]\n', "model[0].providers"),
        ('[[model]]\npath = "m.onnx"\ndelegate = "xnpack"\n', "model[0].delegate"),
        ('[[model]]\npath = "m.onnx"\nfresh_engine = "yes"\n', "model[0].fresh_engine"),
        (
            '[[model]]\npath = "m.onnx"\nproviders = ["cpu"]\nprovider_options = { cuda = { a = "1" } }\n',
            "model[0].provider_options",
        ),
        ('[[model]]\npath = "m.onnx"\ndelegate = "none"\ndelegate_options = { a = "1" }\n', "model[0]"),
    ],
)
def test_bad_accelerator_keys_name_the_plan_key(tmp_path: Path, keys: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_plan(plan(tmp_path, '[devices]\ntags = ["lab"]\n' + keys))
    assert message in str(info.value)


def test_bad_plan_level_accelerator_keys_name_the_plan_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_plan(plan(tmp_path, 'providers = [""]\n[devices]\ntags = ["lab"]\n[[model]]\npath = "m.onnx"\n'))
    assert "plan.providers" in str(info.value)


def test_a_non_boolean_fresh_engine_says_true_or_false(tmp_path: Path) -> None:
    body = '[devices]\ntags = ["lab"]\n[[model]]\npath = "m.onnx"\nfresh_engine = "yes"\n'
    with pytest.raises(ConfigError, match="expected true or false"):
        load_plan(plan(tmp_path, body))
