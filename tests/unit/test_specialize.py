"""--fix-input's pure parts: parsing NAME=VALUE, values typed and shaped from the model's input,
the input replaced by a constant, and onnxruntime's BASIC folding resolving a constant If."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compress.specialize import (
    fix_inputs,
    fixed_values,
    inline_constant_ifs,
    parse_fix_inputs,
    specialize,
)
from edgekit.core.errors import UsageError


def _vad_like(opset: int, dim: int, rate_dtype: int = TensorProto.INT64) -> onnx.ModelProto:
    """x [N, dim], sr (scalar) -> If(Equal(sr, 16000)) { tanh(x @ W16) } else { tanh(x @ W8) }
    -> @ Wo -> y [N, 5]: the sample-rate switch of a voice-activity detector."""
    rng = np.random.default_rng(dim)
    info = helper.make_tensor_value_info

    def branch(tag: str, weight: str) -> onnx.GraphProto:
        return helper.make_graph(
            [
                helper.make_node("MatMul", ["x", weight], [f"{tag}_h"], name=f"{tag}_mm"),
                helper.make_node("Tanh", [f"{tag}_h"], [f"{tag}_y"], name=f"{tag}_tanh"),
            ],
            tag,
            [],
            [info(f"{tag}_y", TensorProto.FLOAT, None)],
        )

    rate = np.array(16000).astype(helper.tensor_dtype_to_np_dtype(rate_dtype))
    graph = helper.make_graph(
        [
            helper.make_node("Equal", ["sr", "k16"], ["is16"], name="is16k"),
            helper.make_node(
                "If",
                ["is16"],
                ["h"],
                name="rate_if",
                then_branch=branch("then", "W16"),
                else_branch=branch("else", "W8"),
            ),
            helper.make_node("MatMul", ["h", "Wo"], ["y"], name="head"),
        ],
        "vad_like",
        [info("x", TensorProto.FLOAT, ["N", dim]), info("sr", rate_dtype, [])],
        [info("y", TensorProto.FLOAT, ["N", 5])],
        [
            numpy_helper.from_array(
                (rng.standard_normal((dim, 16)) / np.sqrt(dim)).astype(np.float32), "W16"
            ),
            numpy_helper.from_array((rng.standard_normal((dim, 16)) / np.sqrt(dim)).astype(np.float32), "W8"),
            numpy_helper.from_array((rng.standard_normal((16, 5)) / 4).astype(np.float32), "Wo"),
            numpy_helper.from_array(rate, "k16"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    return model


def test_parse_fix_inputs() -> None:
    assert parse_fix_inputs(["sr=16000", " h = [1, 2] "]) == {"sr": "16000", "h": "[1, 2]"}
    for bad in ("sr", "=3", "sr=", "sr:16000"):
        with pytest.raises(UsageError, match="expected NAME=VALUE"):
            parse_fix_inputs([bad])
    with pytest.raises(UsageError, match="given twice"):
        parse_fix_inputs(["sr=1", "sr=2"])


@pytest.mark.parametrize(
    ("dtype", "text", "want"),
    [
        (TensorProto.INT64, "16000", np.array(16000, np.int64)),
        (TensorProto.INT32, "8000", np.array(8000, np.int32)),
        (TensorProto.FLOAT, "16000", np.array(16000, np.float32)),
        (TensorProto.FLOAT, "0.25", np.array(0.25, np.float32)),
    ],
)
def test_values_take_the_inputs_dtype(dtype: int, text: str, want: np.ndarray) -> None:
    values = fixed_values(_vad_like(15, 33, dtype), {"sr": text})
    assert values["sr"].dtype == want.dtype and values["sr"].shape == () and values["sr"] == want


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("16k", "not a number"),
        ("0.5", "dtype int64"),
        ("[1, 2]", "does not fit input 'sr' []"),
        ('"16000"', "dtype int64"),
        ("null", "dtype int64"),
    ],
)
def test_values_that_do_not_parse_or_fit(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        fixed_values(_vad_like(13, 33), {"sr": text})
    assert "\n" not in str(info.value)


def test_unknown_name_and_every_input_fixed() -> None:
    model = _vad_like(17, 40)
    with pytest.raises(UsageError, match="no such input; inputs: x, sr"):
        fixed_values(model, {"rate": "16000"})
    with pytest.raises(UsageError, match="every input"):
        fixed_values(model, {"sr": "16000", "x": str([[0.5] * 40])})


def test_shapes_scalar_fills_fixed_shape_list_reshapes() -> None:
    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "g",
        [info("a", TensorProto.FLOAT, [2, 3]), info("b", TensorProto.FLOAT, ["N", 3])],
        [info("c", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert fixed_values(model, {"a": "1.5"})["a"].tolist() == [[1.5] * 3] * 2
    assert fixed_values(model, {"a": "[1, 2, 3, 4, 5, 6]"})["a"].shape == (2, 3)
    assert fixed_values(model, {"b": "[[1, 2, 3]]"})["b"].shape == (1, 3)
    with pytest.raises(UsageError, match="open dimensions"):
        fixed_values(model, {"b": "2"})
    with pytest.raises(UsageError, match="does not fit"):
        fixed_values(model, {"b": "[[1, 2]]"})


def test_fix_inputs_makes_a_constant() -> None:
    model = _vad_like(15, 33)
    fixed = fix_inputs(model, {"sr": np.array(8000, np.int64)})
    assert [i.name for i in fixed.graph.input] == ["x"]
    (init,) = [i for i in fixed.graph.initializer if i.name == "sr"]
    assert numpy_helper.to_array(init) == 8000
    assert [i.name for i in model.graph.input] == ["x", "sr"]  # the original is left alone


@pytest.mark.parametrize(("opset", "dim", "rate"), [(13, 33, 16000), (15, 90, 8000), (17, 100, 16000)])
def test_basic_folding_resolves_the_if_to_the_taken_branch(
    tmp_path: Path, opset: int, dim: int, rate: int
) -> None:
    model = _vad_like(opset, dim)
    source, out = tmp_path / "m.onnx", tmp_path / "s.onnx"
    onnx.save(model, str(source))
    record = specialize(source, out, fixed_values(model, {"sr": str(rate)}))
    assert record["fixed_inputs"] == {"sr": rate} and record["if_nodes"] == {"before": 1, "after": 0}
    folded = onnx.load(str(out))
    assert [i.name for i in folded.graph.input] == ["x"]
    assert [n.op_type for n in folded.graph.node].count("MatMul") == 2
    kept = {i.name for i in folded.graph.initializer}
    assert ("W16" in kept) == (rate == 16000) and ("W8" in kept) == (rate != 16000)
    assert {o.domain for o in folded.opset_import} <= {"", "ai.onnx"}  # no contrib domains
    x = np.random.default_rng(dim).standard_normal((7, dim)).astype(np.float32)
    want = ort.InferenceSession(str(source)).run(None, {"x": x, "sr": np.array(rate, np.int64)})[0]
    got = ort.InferenceSession(str(out)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "s.onnx"]


@pytest.mark.parametrize(("outer", "inner"), [(True, True), (True, False), (False, True)])
def test_inline_constant_ifs_without_onnxruntime(outer: bool, inner: bool) -> None:
    """The fallback inliner alone: an If on a constant condition whose taken branch holds another
    constant-condition If and reads outer-scope tensors; the result has no If, unique names, and
    computes what onnxruntime computes on the original."""
    info = helper.make_tensor_value_info
    rng = np.random.default_rng(int(outer) * 2 + int(inner))

    def leaf(tag: str, weight: str) -> onnx.GraphProto:
        return helper.make_graph(
            [helper.make_node("MatMul", ["x", weight], ["t"], name="mm")],  # same local names in both
            tag,
            [],
            [info("t", TensorProto.FLOAT, None)],
        )

    then_branch = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["c2"], name="c2", value=numpy_helper.from_array(np.array(inner))
            ),
            helper.make_node(
                "If", ["c2"], ["t"], name="inner", then_branch=leaf("a", "Wa"), else_branch=leaf("b", "Wb")
            ),
        ],
        "then",
        [],
        [info("t", TensorProto.FLOAT, None)],
    )
    graph = helper.make_graph(
        [
            helper.make_node(
                "If", ["c1"], ["h"], name="outer", then_branch=then_branch, else_branch=leaf("c", "Wc")
            ),
            helper.make_node("Relu", ["h"], ["y"], name="relu"),
        ],
        "nested",
        [info("x", TensorProto.FLOAT, ["N", 6])],
        [info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(np.array(outer), "c1")]
        + [
            numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), w)
            for w in ("Wa", "Wb", "Wc")
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    x = rng.standard_normal((5, 6)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    passes = [inline_constant_ifs(folded) for _ in range(3)]
    assert passes == ([1, 1, 0] if outer else [1, 0, 0])
    assert not any(n.op_type == "If" for n in folded.graph.node)
    onnx.checker.check_model(folded, full_check=True)
    outputs = [o for n in folded.graph.node for o in n.output]
    assert len(outputs) == len(set(outputs))
    got = ort.InferenceSession(folded.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
