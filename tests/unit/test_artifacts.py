from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edgekit.core.artifacts import load_artifact
from edgekit.core.errors import ModelError


def test_model_file(mlp_model: Path) -> None:
    artifact = load_artifact(mlp_model)
    assert artifact.sha256 == hashlib.sha256(mlp_model.read_bytes()).hexdigest()
    assert artifact.size_bytes == mlp_model.stat().st_size
    assert (artifact.format, artifact.name) == ("onnx", "mlp")


def test_artifact_directory(tmp_path: Path, mlp_model: Path) -> None:
    directory = tmp_path / "mlp-int8"
    directory.mkdir()
    (directory / "model.onnx").write_bytes(mlp_model.read_bytes())
    sha = hashlib.sha256(mlp_model.read_bytes()).hexdigest()
    manifest = {"artifact": {"file": "model.onnx", "sha256": sha}, "recipe": [{"name": "int8-static"}]}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    artifact = load_artifact(directory)
    assert (artifact.name, artifact.recipe) == ("mlp-int8", [{"name": "int8-static"}])
    manifest["artifact"]["sha256"] = "0" * 64
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="does not match the manifest"):
        load_artifact(directory)
    manifest["artifact"]["file"] = "../escape.onnx"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="must be a file name"):
        load_artifact(directory)


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.onnx", "no such file"), ("model.pt", "unsupported model file type '.pt'")],
)
def test_bad_paths(tmp_path: Path, name: str, message: str) -> None:
    path = tmp_path / name
    if name.endswith(".pt"):
        path.write_bytes(b"x")
    with pytest.raises(ModelError, match=message):
        load_artifact(path)


def test_plain_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"only as an artifact directory with manifest\.json"):
        load_artifact(tmp_path)
