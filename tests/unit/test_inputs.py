from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.core.errors import InputSpecError, ModelError, UsageError
from edgekit.core.inputs import check_inputs_file, parse_shape_options, resolve_input_spec
from edgekit.core.onnx_model import TensorInfo, graph_inputs, load_onnx

IMAGE = TensorInfo("image", "float32", ("batch", 3, "height", "width"))
FIXED = TensorInfo("x", "float32", (1, 3, 224, 224))


def test_batch_defaults_to_one_other_symbolic_dims_need_shape() -> None:
    assert resolve_input_spec([TensorInfo("x", "float32", ("N", 64))], {}) == {
        "x": {"shape": [1, 64], "dtype": "float32"}
    }
    with pytest.raises(InputSpecError, match=r"--shape image=1x3xNxN"):
        resolve_input_spec([IMAGE], {})


def test_shape_option_fills_symbolic_and_checks_fixed() -> None:
    spec = resolve_input_spec([IMAGE], parse_shape_options(["image=2x3x64x48"], ["image"]))
    assert spec["image"]["shape"] == [2, 3, 64, 48]
    with pytest.raises(InputSpecError, match="dimension 2 is 256, the model fixes it at 224"):
        resolve_input_spec([FIXED], parse_shape_options(["1x3x256x224"], ["x"]))
    with pytest.raises(InputSpecError, match="rank 3, the model expects rank 4"):
        resolve_input_spec([FIXED], parse_shape_options(["x=1x3x224"], ["x"]))


def test_a_dimension_declared_minus_one_is_open(tmp_path: Path) -> None:
    """paddle2onnx writes -1 (dim_value) for "any", as in PP-OCR's classifier: [-1, 3, 48, -1]."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, 48, -1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3, 48, -1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "minus_one", [x], [y])
    path = tmp_path / "minus_one.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    (info,) = graph_inputs(load_onnx(path))
    assert info.dims == (-1, 3, 48, -1)
    with pytest.raises(InputSpecError, match=r"leaves open \(3:-1\); give them with --shape x=1x3x48xN"):
        resolve_input_spec([info], {})
    spec = resolve_input_spec([info], parse_shape_options(["x=2x3x48x192"], ["x"]))
    assert spec["x"]["shape"] == [2, 3, 48, 192]
    with pytest.raises(InputSpecError, match="dimension 2 is 32, the model fixes it at 48"):
        resolve_input_spec([info], parse_shape_options(["x=1x3x32x192"], ["x"]))
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.zeros((1, 3, 48, 100), np.float32))
    check_inputs_file(inputs, [info])


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["nope=1x2"], "the model has no input 'nope'; inputs: a, b"),
        (["1x2"], "the model has 2 inputs (a, b); write NAME=SHAPE"),
        (["a=1xtwo"], "is not a shape like 1x3x224x224"),
        (["a=1x0"], "every dimension must be a positive integer"),
    ],
)
def test_bad_shape_options(items: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_shape_options(items, ["a", "b"])
    assert message in str(info.value)


def test_real_model_inputs(multi_input_model: Path) -> None:
    inputs = graph_inputs(load_onnx(multi_input_model))
    assert [(i.name, i.dtype, i.dims) for i in inputs] == [
        ("tokens", "int64", ("batch", "seq")),
        ("mask", "bool", ("batch", "seq")),
        ("scale", "float32", (1,)),
    ]
    with pytest.raises(InputSpecError, match="tokens"):
        resolve_input_spec(inputs, {})
    spec = resolve_input_spec(
        inputs, parse_shape_options(["tokens=1x16", "mask=1x16"], ["tokens", "mask", "scale"])
    )
    assert spec == {
        "tokens": {"shape": [1, 16], "dtype": "int64"},
        "mask": {"shape": [1, 16], "dtype": "bool"},
        "scale": {"shape": [1], "dtype": "float32"},
    }


def test_inputs_file_checks(tmp_path: Path, mlp_model: Path) -> None:
    inputs = graph_inputs(load_onnx(mlp_model))
    good = tmp_path / "good.npz"
    np.savez(good, input=np.zeros((5, 64), np.float32))
    assert check_inputs_file(good, inputs) == {"input": {"shape": [1, 64], "dtype": "float32"}}
    assert check_inputs_file(good, inputs, {"input": [4, 64]})["input"]["shape"] == [4, 64]
    cases = {
        "wrong_name.npz": ({"x": np.zeros((1, 64), np.float32)}, "no array named 'input'"),
        "wrong_dtype.npz": (
            {"input": np.zeros((1, 64), np.float64)},
            "is float64, the model expects float32",
        ),
        "wrong_dim.npz": (
            {"input": np.zeros((1, 63), np.float32)},
            ": dimension 1 is 63, the model fixes it at 64",
        ),
        "wrong_rank.npz": ({"input": np.zeros((64,), np.float32)}, "is [64], the model expects rank 2"),
    }
    for name, (arrays, message) in cases.items():
        path = tmp_path / name
        np.savez(path, **arrays)
        with pytest.raises(InputSpecError) as info:
            check_inputs_file(path, inputs)
        assert message in str(info.value)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(InputSpecError, match=r"not a readable \.npz"):
        check_inputs_file(text, inputs)


def test_corrupt_models(tmp_path: Path, mlp_model: Path) -> None:
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(mlp_model.read_bytes()[: mlp_model.stat().st_size // 2])
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model\n" * 10)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for path in (truncated, text, empty):
        with pytest.raises(ModelError, match=str(path.name)):
            load_onnx(path)


def test_a_model_whose_file_name_is_not_utf8_is_checked_in_memory(tmp_path: Path, mlp_model: Path) -> None:
    import os

    latin1 = tmp_path / os.fsdecode(b"mod\xe8le.onnx")  # onnx's checker binding takes no such path
    latin1.write_bytes(mlp_model.read_bytes())
    assert load_onnx(latin1).graph.node
    broken = tmp_path / os.fsdecode(b"cass\xe9.onnx")
    broken.write_bytes(mlp_model.read_bytes().replace(b"Gemm", b"Gxmm", 1))
    with pytest.raises(ModelError, match="invalid ONNX model"):
        load_onnx(broken)
