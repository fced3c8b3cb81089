"""The committed JSON Schemas in docs/schema/ match the models, and agree with the loaders.

Every bundled profile and README-shaped inventory, fleet plan and training config validates both
with `jsonschema` against the committed file and with edgekit's loader; a bad file fails both.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from edgekit.core.config import tomllib, validate_model
from edgekit.core.errors import ConfigError
from edgekit.core.profiles import load_profile_file
from edgekit.core.resources import bundled_profiles_dir
from edgekit.data import demo_calib_set_path, demo_model_path
from edgekit.measure.fleet import load_plan
from edgekit.train.config import TrainFile
from edgekit.transport.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "docs" / "schema"
OURS = {"profile", "inventory", "fleet-plan", "train-config"}

# README "Boards over SSH", plus the optional keys the inventory module documents.
INVENTORY = """
[[device]]
name = "pi4-lab-1"
host = "192.168.1.50"          # an address, a DNS name or a Host alias from ~/.ssh/config
port = 22
user = "pi"
key_file = "~/.ssh/id_ed25519" # omit to use ssh-agent and your default keys
profile = "raspberry-pi-4"
python = "python3"             # the board's interpreter
workdir = "~/.edgekit"         # agent, artifacts and the device lock live here
tags = ["lab", "pi4"]
host_key_policy = "strict"     # default; "accept-new" trusts the first key seen, then pins it

[[device]]
name = "orin-behind-bastion"
host = "10.0.0.9"
profile = "jetson-orin-nano"
tags = ["lab"]
proxy_jump = "ops@bastion.lab:2222"
ssh_config = "~/.ssh/config"
known_hosts = "~/.ssh/known_hosts"
connect_timeout_s = 5
"""
# README's fleet plan example, with max_parallel from "Scaling to hundreds of boards".
PLAN = """
[plan]
name = "nightly"
runs = 100
min_seconds = 2.0
inventory = "devices.toml"       # relative to the plan
max_parallel = 32

[devices]
tags = ["lab"]                   # and/or names = ["pi4-lab-1"]

[[model]]
path = "models/digits.onnx"
recipes = ["as-is", "int8-static"]
calib = "calib.npz"
"""
# README "Training-aware compression": train.toml.
TRAIN = """
[model]
factory = "edgekit.train.examples:ds_cnn"
kwargs = { width = 32 }
inputs = { input = [1, 8, 8] }

[data]
train = "train.npz"
eval = "eval.npz"
image_preprocess = "unit"

[train]
float_epochs = 30
float_learning_rate = 3e-3
epochs = 5
learning_rate = 1e-3
batch_size = 64
augment = "shift"

[qat]
bits = 4
per_channel = false
learning_rate = 1e-4

[prune]
target_ratio = 0.5
steps = 2
criterion = "l1"

[distill]
temperature = 4.0
alpha = 0.7
weighting = "mean"
[[distill.teachers]]
onnx = "teacher.onnx"
[[distill.teachers]]
factory = "edgekit.train.examples:mlp"
epochs = 30
"""


def committed(stem: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{stem}.schema.json").read_text())
    return schema


def schema_errors(stem: str, document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(committed(stem))
    return [error.message for error in validator.iter_errors(document)]


def schemas_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("edgekit_schemas_script", ROOT / "scripts" / "schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_are_generated_from_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    script = schemas_script()
    assert set(script.SCHEMAS) >= OURS
    assert script.main(["--check"]) == 0, capsys.readouterr().err
    for stem in OURS:
        jsonschema.Draft202012Validator.check_schema(committed(stem))


def test_check_fails_on_a_stale_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = schemas_script()
    for name, text in script.generate().items():
        (tmp_path / name).write_text(text)
    stale = json.loads((tmp_path / "profile.schema.json").read_text())
    stale["properties"].pop("budgets")
    (tmp_path / "profile.schema.json").write_text(json.dumps(stale))
    script.SCHEMA_DIR = tmp_path
    assert script.main(["--check"]) == 1
    assert "docs/schema/profile.schema.json is stale" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(bundled_profiles_dir().glob("*.toml")), ids=lambda p: p.stem)
def test_every_bundled_profile_validates_against_the_schema(path: Path) -> None:
    assert schema_errors("profile", tomllib.loads(path.read_text())) == []
    assert load_profile_file(path).name == path.stem


def test_readme_inventory_and_plan_validate(tmp_path: Path) -> None:
    assert schema_errors("inventory", tomllib.loads(INVENTORY)) == []
    assert schema_errors("fleet-plan", tomllib.loads(PLAN)) == []
    (tmp_path / "devices.toml").write_text(INVENTORY)
    (tmp_path / "plan.toml").write_text(PLAN)
    (tmp_path / "models").mkdir()
    shutil.copy(demo_model_path(), tmp_path / "models" / "digits.onnx")
    shutil.copy(demo_calib_set_path(), tmp_path / "calib.npz")
    targets = load_inventory(tmp_path / "devices.toml")
    assert targets["orin-behind-bastion"].proxy_jump == "ops@bastion.lab:2222"
    assert targets["pi4-lab-1"].tags == ("lab", "pi4") and targets["pi4-lab-1"].port == 22
    plan = load_plan(tmp_path / "plan.toml")
    assert [d.name for d in plan.devices] == ["orin-behind-bastion", "pi4-lab-1"]
    assert [c.recipe for c in plan.cells] == ["as-is", "int8-static"]
    assert (plan.options.runs, plan.max_parallel) == (100, 32)


def test_readme_train_config_validates() -> None:
    data = tomllib.loads(TRAIN)
    assert schema_errors("train-config", data) == []
    parsed = validate_model(TrainFile, data, Path("train.toml"), one_based=("teachers",))
    assert [t.onnx or t.factory for t in parsed.distill.teachers] == [
        "teacher.onnx",
        "edgekit.train.examples:mlp",
    ]


def profile_text(old: str, new: str) -> str:
    text = (bundled_profiles_dir() / "raspberry-pi-4.toml").read_text()
    assert old in text
    return text.replace(old, new, 1)


BAD_FILES = [
    # (schema, file name, TOML text, what the loader's one-line error says)
    (
        "profile",
        "raspberry-pi-4.toml",
        profile_text("peak_rss_mb =", "peak_rss_mib ="),
        "[budgets]: unknown key 'peak_rss_mib' (did you mean 'peak_rss_mb'?)",
    ),
    (
        "profile",
        "raspberry-pi-4.toml",
        profile_text("cores = 4", 'cores = "4"'),
        "facts.cores: expected an integer >= 0 (CPU cores; 0 = the host's), got the string '4'",
    ),
    (
        "profile",
        "raspberry-pi-4.toml",
        profile_text("peak_rss_mb = 1024.0", "peak_rss_mb = -1.0"),
        "budgets.peak_rss_mb: expected a number >= 0 (MiB), got -1.0",
    ),
    (
        "profile",
        "raspberry-pi-4.toml",
        profile_text("schema = 1", "schema = true"),
        "schema: expected 1 (the profile schema version), got a boolean",
    ),
    (
        "profile",
        "raspberry-pi-4.toml",
        profile_text("power = [", 'power = ["rapl", '),
        "sensors.power: 'rapl': expected rapl:ZONE_NAME",
    ),
    (
        "profile",
        "raspberry-pi-4.toml",
        profile_text("power = [", 'power = ["command", '),
        "sensors.power: 'command': the `command` sensor needs [sensors] power_command",
    ),
    (
        "inventory",
        "devices.toml",
        INVENTORY.replace("port = 22", "prot = 22"),
        "[device[0]]: unknown key 'prot' (did you mean 'port'?)",
    ),
    (
        "inventory",
        "devices.toml",
        INVENTORY.replace("port = 22", 'port = "22"'),
        "device[0].port: expected an integer 1-65535 (TCP port), got the string '22'",
    ),
    (
        "inventory",
        "devices.toml",
        INVENTORY.replace("port = 22", "port = 99999"),  # once dialled as 99999 mod 65536
        "device[0].port: expected an integer 1-65535 (TCP port), got 99999",
    ),
    (
        "inventory",
        "devices.toml",
        INVENTORY.replace("port = 22", "port = 0"),
        "device[0].port: expected an integer 1-65535 (TCP port), got 0",
    ),
    (
        "inventory",
        "devices.toml",
        INVENTORY.replace("connect_timeout_s = 5", "connect_timeout_s = -5"),
        "device[1].connect_timeout_s: expected a number > 0 (seconds), got -5",
    ),
    (
        "inventory",
        "devices.toml",
        INVENTORY.replace('name = "orin-behind-bastion"', 'name = "local"'),
        "device[1].name: 'local' is reserved",
    ),
    (
        "fleet-plan",
        "plan.toml",
        PLAN.replace("runs = 100", "run = 100"),
        "[plan]: unknown key 'run' (did you mean 'runs'?)",
    ),
    (
        "fleet-plan",
        "plan.toml",
        PLAN.replace('tags = ["lab"]', 'tags = "lab"'),
        "devices.tags: expected a list of strings (inventory tags), got the string 'lab'",
    ),
    (
        "fleet-plan",
        "plan.toml",
        PLAN.replace("min_seconds = 2.0", "min_seconds = -2.0"),
        "plan.min_seconds: expected a number >= 0 (seconds, the least timing time per benchmark), got -2.0",
    ),
]


@pytest.mark.parametrize(("stem", "name", "text", "message"), BAD_FILES)
def test_a_bad_file_fails_the_schema_and_the_loader(
    tmp_path: Path, stem: str, name: str, text: str, message: str
) -> None:
    assert schema_errors(stem, tomllib.loads(text)) != []
    (tmp_path / "devices.toml").write_text(INVENTORY)
    path = tmp_path / name
    path.write_text(text)
    load = {"profile": load_profile_file, "inventory": load_inventory, "fleet-plan": load_plan}[stem]
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_proxy_jump_port_out_of_range_fails_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY.replace('"ops@bastion.lab:2222"', '"ops@bastion.lab:70000"'))
    with pytest.raises(ConfigError, match=r"device\[1\]\.proxy_jump: .*'ops@bastion.lab:70000'.*1-65535"):
        load_inventory(path)


def test_a_bad_train_config_fails_the_schema_and_the_model() -> None:
    text = TRAIN.replace("batch_size = 64", "batch_size = 0")
    assert schema_errors("train-config", tomllib.loads(text)) != []
    with pytest.raises(
        ConfigError, match=r"train.batch_size: expected an integer >= 1 \(rows per step\), got 0"
    ):
        validate_model(TrainFile, tomllib.loads(text), Path("train.toml"))
    bits = TRAIN.replace("bits = 4", "bits = 9")
    assert schema_errors("train-config", tomllib.loads(bits)) != []
    with pytest.raises(ConfigError, match=r"expected an integer 2-8 \(weight bits\), got 9"):
        validate_model(TrainFile, tomllib.loads(bits), Path("train.toml"))
    both = TRAIN.replace('onnx = "teacher.onnx"', 'onnx = "teacher.onnx"\nfactory = "a.b:c"')
    assert schema_errors("train-config", tomllib.loads(both)) != []
    with pytest.raises(ConfigError, match=r"distill.teachers\[1\]: give exactly one of 'onnx' or 'factory'"):
        validate_model(TrainFile, tomllib.loads(both), Path("train.toml"), one_based=("teachers",))
