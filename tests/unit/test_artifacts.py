from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.core.artifact_writer import prepare_out_dir
from edgekit.core.artifacts import ArtifactFile, artifact_sha256, load_artifact
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


def _branch(name: str, rows: int, seed: int) -> onnx.GraphProto:
    weight = numpy_helper.from_array(
        np.random.default_rng(seed).normal(size=(rows, rows)).astype(np.float32), f"{name}_w"
    )
    return helper.make_graph(
        [helper.make_node("MatMul", ["x", f"{name}_w"], [f"{name}_y"])],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, rows])],
        [weight],
    )


@pytest.mark.parametrize("rows", [33, 90])
def test_external_data_inside_if_branches_is_part_of_the_artifact(tmp_path: Path, rows: int) -> None:
    """One data file per tensor (all_tensors_to_one_file=False), two of them inside If branches."""
    top = numpy_helper.from_array(np.ones((rows, rows), np.float32), "top_w")
    graph = helper.make_graph(
        [
            helper.make_node(
                "If", ["c"], ["z"], then_branch=_branch("a", rows, 1), else_branch=_branch("b", rows, 2)
            ),
            helper.make_node("MatMul", ["z", "top_w"], ["y"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, rows])],
        [top],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "ctl.onnx"
    onnx.save_model(
        model, str(path), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0
    )
    artifact = load_artifact(path)
    assert [f.name for f in artifact.files] == ["ctl.onnx", "a_w", "b_w", "top_w"]
    assert artifact.size_bytes == sum((tmp_path / f.name).stat().st_size for f in artifact.files)
    assert artifact.size_bytes > 3 * rows * rows * 4
    listing = "".join(
        f"{hashlib.sha256((tmp_path / f.name).read_bytes()).hexdigest()}  {f.name}\n" for f in artifact.files
    )
    assert artifact.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    (tmp_path / "b_w").unlink()  # a branch's weights missing: refused, naming the file
    with pytest.raises(ModelError, match="external data file 'b_w' not found next to the model"):
        load_artifact(path)


def test_artifact_sha256_is_the_sha256sum_listing_in_order(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"model")
    (tmp_path / "w.bin").write_bytes(b"weights")
    files = [
        ArtifactFile(n, tmp_path / n, hashlib.sha256((tmp_path / n).read_bytes()).hexdigest(), 1)
        for n in ("m.onnx", "w.bin")
    ]
    assert artifact_sha256(files[:1]) == files[0].sha256  # one file: its own hash
    listing = f"{files[0].sha256}  m.onnx\n{files[1].sha256}  w.bin\n"
    assert artifact_sha256(files) == hashlib.sha256(listing.encode()).hexdigest()
    assert artifact_sha256(files[::-1]) != artifact_sha256(files)  # the order is part of it


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_staging_directory_mode_follows_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        staging = prepare_out_dir(tmp_path / "out", force=False)
    finally:
        os.umask(old)
    assert staging.stat().st_mode & 0o777 == 0o777 & ~umask


def _if_model(rows: int) -> onnx.ModelProto:
    """x [rows] -> If(cond) with a [rows] float weight in each branch, one more at the top."""

    def branch(name: str, value: float) -> onnx.GraphProto:
        weight = numpy_helper.from_array(np.full(rows, value, np.float32), f"w_{name}")
        node = helper.make_node("Add", ["x", f"w_{name}"], [f"y_{name}"])
        out = helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [rows])
        return helper.make_graph([node], name, [], [out], [weight])

    top = numpy_helper.from_array(np.ones(rows, np.float32), "top")
    nodes = [
        helper.make_node(
            "If", ["cond"], ["branched"], then_branch=branch("a", 1), else_branch=branch("b", 2)
        ),
        helper.make_node("Mul", ["branched", "top"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows])],
        [top],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("rows", [300, 1000])
def test_tensor_bytes_counts_subgraph_weights(rows: int) -> None:
    from edgekit.core.onnx_model import tensor_bytes

    raw = 3 * rows * 4  # three float32 weights of `rows`, two of them inside the If's branches
    assert raw <= tensor_bytes(_if_model(rows)) < raw + 3 * 64


def test_save_onnx_one_file_or_external_and_no_stale_data(tmp_path: Path) -> None:
    from edgekit.core.onnx_model import save_onnx

    model = _if_model(1000)  # every weight is 4000 bytes, over the 1 KiB external threshold
    path = tmp_path / "m.onnx"
    assert save_onnx(model, path, external=True) == ["m.onnx.data"]
    assert (tmp_path / "m.onnx.data").stat().st_size >= 3 * 4000
    assert save_onnx(model, path) == []  # fits one message: one file, the old data file gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert onnx.load(str(path)).SerializeToString() == model.SerializeToString()
