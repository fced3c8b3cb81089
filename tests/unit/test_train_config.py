"""The training config: validation names the key, factories that do not import are exit-2 errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.core.errors import ConfigError
from edgekit.train.config import import_factory, infer_inputs, load_config


def write(tmp_path: Path, body: str) -> Path:
    np.savez(tmp_path / "train.npz", input=np.zeros((4, 1, 8, 8), np.float32), labels=np.arange(4))
    np.savez(tmp_path / "eval.npz", input=np.zeros((4, 1, 8, 8), np.float32), labels=np.arange(4))
    path = tmp_path / "train.toml"
    path.write_text(
        '[model]\nfactory = "edgekit.train.examples:ds_cnn"\n[data]\ntrain = "train.npz"\neval = "eval.npz"\n'
        + body
    )
    return path


def test_paths_are_relative_to_the_config_and_defaults_apply(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[train]\nepochs = 2\n[qat]\nbits = 4\n"), "qat")
    assert config.train_data == tmp_path / "train.npz"
    assert config.epochs == 2 and config.batch_size == 64 and config.qat == {"bits": 4}
    assert infer_inputs(config) == {"input": [1, 8, 8]}


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'epoch'.*did you mean 'epochs'"):
        load_config(write(tmp_path, "[train]\nepoch = 2\n"), "qat")


def test_a_teacher_needs_exactly_one_of_onnx_or_factory(tmp_path: Path) -> None:
    body = '[[distill.teachers]]\nonnx = "t.onnx"\nfactory = "a.b:c"\n'
    with pytest.raises(ConfigError, match=r"teachers\[1\]: give exactly one of 'onnx' or 'factory'"):
        load_config(write(tmp_path, body), "distill")
    with pytest.raises(ConfigError, match="at least one"):
        load_config(write(tmp_path, ""), "distill")


def test_missing_data_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    (tmp_path / "eval.npz").unlink()
    with pytest.raises(ConfigError, match=r"data.eval: .*eval.npz: no such file"):
        load_config(path, "prune")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nodots", "expected 'package.module:factory'"),
        ("edgekit.no_such_module:make", "cannot import edgekit.no_such_module: ModuleNotFoundError"),
        ("edgekit.core.errors:no_such_factory", "has no 'no_such_factory'"),
        ("edgekit.core.errors:EXIT_USAGE", "is not callable"),
    ],
)
def test_factory_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        import_factory(spec)
    assert info.value.exit_code == 2 and info.value.data["factory"] == spec


def test_a_technique_section_overrides_epochs_and_learning_rate(tmp_path: Path) -> None:
    from edgekit.train.config import technique_settings

    body = "[train]\nepochs = 4\nlearning_rate = 1e-3\n[qat]\nlearning_rate = 1e-4\n[prune]\nepochs = 7\n"
    config = load_config(write(tmp_path, body), "qat")
    assert technique_settings(config, "qat") == (4, 1e-4)
    assert technique_settings(config, "prune") == (7, 1e-3)
    assert technique_settings(config, "distill") == (4, 1e-3)
