"""Per-output fidelity: degenerate cases, output kinds, the worst output, the quality floor."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgekit.compress.fidelity import (
    QualityFloor,
    compare_outputs,
    degraded_reasons,
    floor_shortfall,
    join_rows,
    output_kind,
    parse_output_kinds,
    quality_loss,
    row_cosines,
    sqnr_db,
    summarize,
    worst_cosine,
)
from edgekit.core.errors import InputSpecError, UsageError


@pytest.mark.parametrize("rows", [1, 33, 90, 256])
def test_zero_output_against_a_live_one_has_cosine_zero_and_is_flagged(rows: int) -> None:
    reference = np.random.default_rng(rows).standard_normal((rows, 4)).astype(np.float32)
    result = compare_outputs(reference, np.zeros_like(reference), None, "scores")
    assert result["cosine_mean"] == 0.0 and result["cosine_min"] == 0.0
    assert any(flag.startswith("constant") for flag in result["flags"])
    assert degraded_reasons(summarize({"y": result}, {}, "d"), QualityFloor())


def test_two_zero_rows_agree_and_identical_outputs_are_clean() -> None:
    assert list(row_cosines(np.zeros((2, 3)), np.zeros((2, 3)))) == [1.0, 1.0]
    reference = np.random.default_rng(0).standard_normal((100, 10)).astype(np.float32)
    result = compare_outputs(reference, reference.copy(), None, "scores")
    assert result["cosine_min"] == pytest.approx(1.0) and result["sqnr_db"] == float("inf")
    assert result["flags"] == [] and result["top1_agreement"] == 1.0
    assert degraded_reasons(summarize({"y": result}, {}, "d"), QualityFloor()) == []


def test_non_finite_values_are_flagged_and_cost_the_row_its_cosine() -> None:
    reference = np.ones((4, 3), np.float32)
    test = reference.copy()
    test[1, 2] = np.inf
    result = compare_outputs(reference, test, None, "map")
    assert result["cosine_min"] == 0.0 and result["cosine_mean"] == pytest.approx(0.75)
    assert result["sqnr_db"] is None and result["flags"][0].startswith("non-finite: 1")


def test_a_constant_float_output_is_not_flagged() -> None:
    reference = np.full((5, 3), 2.0, np.float32)
    assert compare_outputs(reference, reference * 1.001, None, "map")["flags"] == []
    # float varying only in its last bits (1e-7 relative) may round to a constant: not a collapse
    nearly = reference + np.arange(15, dtype=np.float32).reshape(5, 3) * 2e-7
    assert compare_outputs(nearly, reference, None, "map")["flags"] == []
    assert compare_outputs(nearly * np.arange(1, 16).reshape(5, 3), reference, None, "map")["flags"]


def _graph(output: str, producer: str, shape: list[int]) -> object:
    node = helper.make_node(producer, ["x"], [output], **({"axis": 1} if producer == "Softmax" else {}))
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
    )
    return helper.make_model(graph)


def test_output_kinds_are_recognised_by_producer_shape_and_rows() -> None:
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((33, 10)).astype(np.float32)
    unit = logits / np.linalg.norm(logits, axis=1, keepdims=True)
    assert output_kind(_graph("y", "Identity", [33, 10]), "y", logits) == "scores"
    assert output_kind(_graph("y", "Identity", [33, 10]), "y", unit) == "embedding"  # normalised rows
    assert output_kind(_graph("y", "Softmax", [33, 10]), "y", unit) == "scores"  # softmax rows are scores
    # A sentence encoder's mean pooling (sum / count) makes embeddings, whatever their norm.
    assert output_kind(_graph("y", "Div", [33, 384]), "y", rng.standard_normal((33, 384))) == "embedding"
    assert output_kind(_graph("y", "ReduceMean", [33, 10]), "y", logits) == "embedding"
    assert output_kind(None, "y", rng.standard_normal((2, 90, 6))) == "boxes"
    assert output_kind(None, "y", rng.standard_normal((2, 1, 8, 8))) == "map"
    assert output_kind(None, "y", np.arange(6)) == "labels"


def test_only_scores_get_top1_and_the_worst_output_is_summarised() -> None:
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((100, 10))
    embedding = rng.standard_normal((100, 16))
    damaged = embedding + rng.standard_normal((100, 16)) * 2.0
    outputs = {
        "scores": compare_outputs(scores, scores + 1e-3, None, "scores"),
        "embedding": compare_outputs(embedding, damaged, None, "embedding"),
    }
    assert outputs["embedding"]["top1_agreement"] is None
    report = summarize(outputs, {"seq": "seq(tensor(float)) output: skipped"}, "eval.npz")
    assert report["output"] == "embedding" and report["cosine_mean"] == outputs["embedding"]["cosine_mean"]
    assert report["top1_agreement"] == 1.0  # the class-score output's agreement stays at the top
    assert worst_cosine(report) == pytest.approx(outputs["embedding"]["cosine_mean"])
    assert quality_loss(report) == pytest.approx(0.0)
    reasons = degraded_reasons(report, QualityFloor())
    assert reasons and reasons[0].startswith("output embedding: cosine")
    assert floor_shortfall(report, QualityFloor()) > 0
    assert floor_shortfall(report, QualityFloor(min_cosine=-1.0)) == 0.0


def test_top1_floor_and_accuracy_floor() -> None:
    reference = np.eye(10)[np.arange(100) % 10] * 5.0
    test = reference.copy()
    test[:30] = np.roll(test[:30], 1, axis=1)  # 30 of 100 rows change their top-1
    labels = np.arange(100) % 10
    report = summarize({"y": compare_outputs(reference, test, labels, "scores")}, {}, "d")
    assert report["top1_agreement"] == pytest.approx(0.7)
    assert report["accuracy"]["drop_points"] == pytest.approx(30.0)
    assert any("top-1 agreement 70.0% < 80%" in r for r in degraded_reasons(report, QualityFloor(0.0)))
    assert degraded_reasons(report, QualityFloor(min_cosine=0.0, min_top1=0.5)) == []
    assert degraded_reasons(report, QualityFloor(0.0, 0.5, max_accuracy_drop=10.0))


def test_output_kind_overrides_are_parsed() -> None:
    assert parse_output_kinds(["emb=embedding", "y = scores"]) == {"emb": "embedding", "y": "scores"}
    for bad in ("emb", "=scores", "emb=logits"):
        with pytest.raises(UsageError):
            parse_output_kinds([bad])


def test_fp16_cast_round_trips_are_dropped_only_for_float32_sources() -> None:
    """Cast(float32 -> float16 -> float32) is a round trip its readers may skip; Cast(int64 ->
    float16 -> float32) is a conversion (YOLOv8's Range reads one) and must stay."""
    from edgekit.compress.catalog import _drop_cast_round_trips

    def model(source_type: int) -> onnx.ModelProto:
        nodes = [
            helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
            helper.make_node("Cast", ["x16"], ["x32"], to=TensorProto.FLOAT),
            helper.make_node("Relu", ["x32"], ["y"]),
        ]
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", source_type, [4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    floats = _drop_cast_round_trips(model(TensorProto.FLOAT))
    assert [n.op_type for n in floats.graph.node if n.output[0] == "x32"] == []
    assert next(n for n in floats.graph.node if n.op_type == "Relu").input[0] == "x"
    integers = _drop_cast_round_trips(model(TensorProto.INT64))
    assert next(n for n in integers.graph.node if n.op_type == "Relu").input[0] == "x32"
    onnx.checker.check_model(integers, full_check=True)


def test_outputs_of_feeds_of_different_shapes_are_joined_and_compared_unchanged() -> None:
    """Per-feed sets of several image sizes give maps of several sizes: joined with zeros padded
    alike on both sides, the comparison equals the one made feed by feed."""
    rng = np.random.default_rng(3)
    shapes = [(1, 4, 5, 7), (3, 4, 9, 2), (2, 4, 5, 7)]
    reference = [rng.standard_normal(shape) for shape in shapes]
    test = [r + rng.standard_normal(r.shape) * 0.1 for r in reference]
    joined_ref, joined_test = join_rows("map", reference), join_rows("map", test)
    assert joined_ref.shape == (6, 4, 9, 7)
    np.testing.assert_array_equal(joined_ref[1:4, :, :9, :2], reference[1])
    assert np.all(joined_ref[1:4, :, :, 2:] == 0)
    noise = sum(float(np.sum((r - t) ** 2)) for r, t in zip(reference, test, strict=True))
    signal = sum(float(np.sum(r**2)) for r in reference)
    assert sqnr_db(joined_ref, joined_test) == pytest.approx(10 * np.log10(signal / noise))
    cosines = np.concatenate(
        [
            row_cosines(r.reshape(len(r), -1), t.reshape(len(t), -1))
            for r, t in zip(reference, test, strict=True)
        ]
    )
    np.testing.assert_allclose(
        row_cosines(joined_ref.reshape(6, -1), joined_test.reshape(6, -1)), cosines, rtol=1e-12
    )
    with pytest.raises(InputSpecError, match="different shapes over the feeds"):
        join_rows("map", reference, pad=False)


def _heads_model(t: int | None) -> onnx.ModelProto:
    """x [N, 8] -> a Softmax score head [N, 2] and a box head [N, 4] (MatMul + Add, like a face
    detector's), and, with `t`, a linear per-frame head x3 [N, t, 8] -> [N, t, 37] (a CTC
    recognizer's frames)."""
    rng = np.random.default_rng(5)
    init = [
        onnx.numpy_helper.from_array(rng.standard_normal((8, 2)).astype(np.float32), "w_s"),
        onnx.numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "w_b"),
        onnx.numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b_b"),
        onnx.numpy_helper.from_array(rng.standard_normal((8, 37)).astype(np.float32), "w_f"),
        onnx.numpy_helper.from_array(rng.standard_normal(37).astype(np.float32), "b_f"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w_s"], ["s"]),
        helper.make_node("Softmax", ["s"], ["score"], axis=1),
        helper.make_node("MatMul", ["x", "w_b"], ["bm"]),
        helper.make_node("Add", ["bm", "b_b"], ["box"]),
        helper.make_node("MatMul", ["x3", "w_f"], ["fm"]),
        helper.make_node("Add", ["fm", "b_f"], ["frames"]),
        helper.make_node("Relu", ["x3"], ["hidden"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8]),
              helper.make_tensor_value_info("x3", TensorProto.FLOAT, ["N", t or 5, 8])]  # fmt: skip
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
        for n in ("score", "box", "frames", "hidden")
    ]
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, init))


@pytest.mark.parametrize("t", [5, 20])
def test_regression_heads_beside_scores_and_linear_frame_heads(t: int) -> None:
    model = _heads_model(t)
    rng = np.random.default_rng(6)
    assert output_kind(model, "score", rng.random((33, 2))) == "scores"
    assert output_kind(model, "box", rng.standard_normal((33, 4))) == "values"  # not top-1 over coordinates
    assert output_kind(model, "frames", rng.standard_normal((33, t, 37))) == "sequence"
    assert output_kind(model, "hidden", rng.standard_normal((33, t, 8))) == "map"  # not a linear head


@pytest.mark.parametrize(("rows", "t"), [(33, 20), (90, 7)])
def test_a_sequence_agrees_only_when_every_position_does(rows: int, t: int) -> None:
    rng = np.random.default_rng(rows)
    reference = rng.standard_normal((rows, t, 37))
    test = reference.copy()
    wrong = np.arange(rows) % 2 == 0  # every other row: one frame's argmax moves elsewhere
    position = rng.integers(0, t, rows)
    for row in np.flatnonzero(wrong):
        frame = test[row, position[row]]
        frame[frame.argmin()] = frame.max() + 1.0
    result = compare_outputs(reference, test, None, "sequence")
    assert result["top1_agreement"] == pytest.approx(1 - wrong.mean())
    assert result["position_agreement"] == pytest.approx(1 - wrong.sum() / (rows * t))
    assert result["position_agreement"] >= 0.9 > 0.8 > result["top1_agreement"]
    padded = np.concatenate([reference, np.zeros((rows, 3, 37))], axis=1)  # padding never disagrees
    assert compare_outputs(padded, padded.copy(), None, "sequence")["top1_agreement"] == 1.0
    reasons = degraded_reasons({"outputs": {"frames": result}}, QualityFloor())
    assert any("frames" in reason and "top-1" in reason for reason in reasons), reasons
