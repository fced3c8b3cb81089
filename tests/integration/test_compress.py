"""`edgekit compress` on real models with onnxruntime's real quantizer; fidelity measured on real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.core.artifacts import load_artifact
from edgekit.core.profiles import load_profile
from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration

CALIB, EVAL = str(demo_calib_set_path()), str(demo_test_set_path())


run = run_cli


def lib_compress(recipe: str, out: Path, **options: Any) -> dict[str, Any]:
    profile = load_profile(options.pop("target", "local"))
    return compress(
        Path(options.pop("model", demo_model_path())),
        out,
        CompressOptions(steps=parse_recipes([recipe]), profile=profile, **options),
    )


def zero_point_types(path: Path) -> set[int]:
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    return {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear"}


@pytest.fixture(scope="module")
def int8_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8") / "demo-int8"
    proc = run(
        "compress",
        str(demo_model_path()),
        "-o",
        str(out),
        "--recipe",
        "int8-static",
        "--calib",
        CALIB,
        "--eval",
        EVAL,
        "--json",
        home=out.parent,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_int8_static_artifact_and_manifest(int8_demo: Path) -> None:
    manifest = json.loads((int8_demo / "manifest.json").read_text())
    artifact = load_artifact(int8_demo)  # verifies the sha256 against the manifest
    assert manifest["artifact"]["sha256"] == artifact.sha256
    assert manifest["source"]["size_bytes"] / artifact.size_bytes >= 3.0
    step = manifest["recipe"][0]
    assert step["name"] == "int8-static" and step["params"]["per-channel"] is True
    assert step["report"]["format"] == "QDQ" and step["report"]["scheme"] == "u8s8"  # local: x86
    assert step["report"]["calibration"]["rows"] == 256
    assert manifest["tools"]["onnxruntime"] and manifest["tools"]["onnx"]
    fid = manifest["fidelity"]
    assert fid["rows"] == 360 and fid["accuracy"]["before"] > 0.95
    assert fid["accuracy"]["drop_points"] <= 2.0
    assert fid["top1_agreement"] >= 0.97
    assert zero_point_types(artifact.path) == {TensorProto.UINT8}
    assert not list(int8_demo.parent.glob(".demo-int8.tmp-*"))


def test_bench_takes_an_artifact_directory(int8_demo: Path, tmp_path: Path) -> None:
    proc = run("bench", str(int8_demo), "--json", "--runs", "20", "--min-seconds", "0", home=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    assert result["artifact"]["recipe"][0]["name"] == "int8-static"
    assert result["artifact"]["sha256"] == load_artifact(int8_demo).sha256


def test_scheme_follows_the_target(tmp_path: Path) -> None:
    manifest = lib_compress("int8-static", tmp_path / "arm", calib=Path(CALIB), target="raspberry-pi-4")
    assert manifest["recipe"][0]["report"]["scheme"] == "s8s8"
    assert zero_point_types(tmp_path / "arm" / "model.onnx") == {TensorProto.INT8}


def _saturating_x86_host() -> bool:
    """Read /proc/cpuinfo here, independently of edgekit: x86 without a VNNI/AMX int8 flag."""
    import platform

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []))
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return x86 and bool(flags) and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}


@pytest.mark.parametrize(("target", "reduce"), [("local", None), ("raspberry-pi-4", False)])
def test_reduce_range_follows_the_target_host(tmp_path: Path, target: str, reduce: bool | None) -> None:
    """Profile local's reduce_range = "host": 7-bit weights exactly when this CPU's u8s8 kernels
    saturate; an Arm board's profile says false. The int8 weights show which grid was used."""
    expected = _saturating_x86_host() if reduce is None else reduce
    manifest = lib_compress("int8-static", tmp_path / "q", calib=Path(CALIB), target=target)
    assert manifest["recipe"][0]["report"]["reduce_range"] is expected
    model = onnx.load(str(tmp_path / "q" / "model.onnx"))
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.INT8]
    largest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights if w.size > 16)
    assert (largest <= 64) is expected, largest


def test_dynamic_and_fp16(tmp_path: Path) -> None:
    fp16 = lib_compress("fp16", tmp_path / "fp16", eval=Path(EVAL))
    assert 1.8 <= fp16["size_ratio"] <= 2.2
    assert fp16["fidelity"]["top1_agreement"] == 1.0 and fp16["fidelity"]["sqnr_db"] > 40
    dynamic = lib_compress("int8-dynamic", tmp_path / "dyn", eval=Path(EVAL))
    assert dynamic["fidelity"]["accuracy"]["drop_points"] <= 2.0


def test_magnitude_pruning_is_reported_honestly(tmp_path: Path) -> None:
    manifest = lib_compress("prune-magnitude:0.5", tmp_path / "mag", eval=Path(EVAL))
    report = manifest["recipe"][0]["report"]
    assert abs(report["sparsity_achieved"] - 0.5) < 0.02
    assert report["size_bytes_after"] == report["size_bytes_before"]
    assert report["gzip_bytes_after"] < 0.8 * report["gzip_bytes_before"]
    assert "no speed-up" in report["note"]


def test_channel_pruning_with_reconstruction(tmp_path: Path) -> None:
    refit = lib_compress("prune-channels:0.4", tmp_path / "refit", calib=Path(CALIB), eval=Path(EVAL))
    plain = lib_compress("prune-channels:0.4,reconstruct=no", tmp_path / "plain", eval=Path(EVAL))
    report = refit["recipe"][0]["report"]
    assert report["parameters_after"] < 0.6 * report["parameters_before"]
    assert [(layer["channels_before"], layer["channels_after"]) for layer in report["layers"]] == [
        (32, 24),
        (64, 40),
        (64, 40),
    ]
    assert refit["fidelity"]["accuracy"]["drop_points"] <= 1.0
    assert plain["fidelity"]["accuracy"]["drop_points"] > refit["fidelity"]["accuracy"]["drop_points"]
    # the pruned graph is valid and smaller for real: its Conv weights have fewer channels
    weights = {i.name: i for i in onnx.load(str(tmp_path / "refit" / "model.onnx")).graph.initializer}
    assert sorted(tuple(w.dims) for w in weights.values() if len(w.dims) == 4) == [
        (24, 1, 3, 3),
        (40, 24, 3, 3),
        (40, 40, 3, 3),
    ]


def low_rank_mlp(path: Path, rank: int = 8, features: int = 128, outputs: int = 96) -> Path:
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((features, rank)) @ rng.standard_normal((rank, outputs))).astype(np.float32)
    weight += 0.01 * rng.standard_normal(weight.shape).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["out"])],
        "lowrank",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", outputs])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_lowrank_factorises_a_low_rank_layer(tmp_path: Path) -> None:
    model = low_rank_mlp(tmp_path / "lr.onnx")
    calib = tmp_path / "calib.npz"
    np.savez(calib, input=np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32))
    manifest = lib_compress("lowrank:energy=0.999", tmp_path / "out", model=model, calib=calib)
    (layer,) = manifest["recipe"][0]["report"]["layers"]
    assert layer["rank"] == 8 and layer["parameters_after"] == 8 * (128 + 96)
    assert manifest["fidelity"]["cosine_min"] > 0.999
    ops = [n.op_type for n in onnx.load(str(tmp_path / "out" / "model.onnx")).graph.node]
    assert ops == ["MatMul", "MatMul"]


def outlier_mlp(directory: Path) -> tuple[Path, Path, Path]:
    """An MLP whose second layer has one huge weight: per-tensor int8 wipes out that layer's other
    weights (known ground truth: fc2 is the sensitive node). Labels are the float model's own
    predictions, so float accuracy is 100%."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((64, 64)).astype(np.float32) * 0.2
    w2 = rng.standard_normal((64, 10)).astype(np.float32) * 0.2
    w2[0, 0] = 40.0
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["hr"], name="relu"),
            helper.make_node("MatMul", ["hr", "w2"], ["logits"], name="fc2"),
        ],
        "outlier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = directory / "outlier.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    x = rng.standard_normal((600, 64)).astype(np.float32)
    labels = ort.InferenceSession(str(model)).run(None, {"input": x})[0].argmax(1)
    calib, evaluation = directory / "calib.npz", directory / "eval.npz"
    np.savez(calib, input=x[:200])
    np.savez(evaluation, input=x[200:], labels=labels[200:])
    return model, calib, evaluation


def test_accuracy_guard_keeps_the_sensitive_node_float(tmp_path: Path) -> None:
    model, calib, evaluation = outlier_mlp(tmp_path)
    plain = lib_compress(
        "int8-static:per-channel=no,keep-first-float=no",  # fc1 reads the input
        tmp_path / "plain",
        model=model,
        calib=calib,
        eval=evaluation,
        per_layer=True,
    )
    # the per-layer report names the broken layer first
    assert [item["node"] for item in plain["fidelity"]["per_layer_sqnr_drop_db"]] == ["fc2", "fc1"]
    assert plain["fidelity"]["accuracy"]["drop_points"] > 10  # the outlier really breaks per-tensor int8
    manifest = lib_compress(
        "int8-static:per-channel=no,keep-first-float=no",  # fc1 reads the input
        tmp_path / "guarded",
        model=model,
        calib=calib,
        eval=evaluation,
        max_accuracy_drop=2.0,
    )
    guard = manifest["accuracy_guard"]
    assert guard["method"] == "per-layer SQNR" and guard["met"] is True
    assert [item["node"] for item in guard["kept_float"]] == ["fc2"]
    assert manifest["recipe"][0]["report"]["kept_float"] == guard["kept_float"]
    assert manifest["fidelity"]["accuracy"]["drop_points"] == pytest.approx(guard["loss_points"])
    assert guard["loss_points"] <= 2.0
    # fc2 really is float in the artifact: its weight is a float initializer, fc1's is int8
    weights = {
        i.name: i.data_type for i in onnx.load(str(tmp_path / "guarded" / "model.onnx")).graph.initializer
    }
    assert weights["w2"] == TensorProto.FLOAT and "w2_quantized" not in weights
    assert weights["w1_quantized"] == TensorProto.INT8


def add_only_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_bad_input_is_exit_2_and_leaves_nothing(int8_demo: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, image=np.zeros((4, 1, 8, 8), np.float32))
    no_labels = tmp_path / "nolabels.npz"
    np.savez(no_labels, input=np.zeros((4, 1, 8, 8), np.float32))
    demo = str(demo_model_path())
    cases = [
        ([demo, "--recipe", "int8-static"], "int8-static needs calibration data"),
        ([demo, "--recipe", "int8-static", "--calib", str(wrong)], "no array named 'input'"),
        (
            [
                demo,
                "--recipe",
                "int8-static",
                "--calib",
                CALIB,
                "--eval",
                str(no_labels),
                "--max-accuracy-drop",
                "1",
            ],
            "no 'labels' array",
        ),
        ([demo, "--recipe", "int9-static"], "unknown recipe 'int9-static'"),
        ([str(int8_demo), "--recipe", "int8-dynamic"], "already quantized"),
        ([str(add_only_model(tmp_path / "add.onnx")), "--recipe", "int8-dynamic"], "nothing to quantize"),
    ]
    for index, (args, message) in enumerate(cases):
        out = tmp_path / f"out{index}"
        proc = run("compress", *args, "-o", str(out), home=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not out.exists()
    assert not list(tmp_path.glob(".out*"))


def test_existing_output_needs_force(int8_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "fp16"
    assert (
        run("compress", str(demo_model_path()), "-o", str(out), "--recipe", "fp16", home=tmp_path).returncode
        == 0
    )
    before = (out / "manifest.json").read_text()
    again = run("compress", str(demo_model_path()), "-o", str(out), "--recipe", "fp16", home=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    assert (out / "manifest.json").read_text() == before
    forced = run(
        "compress", str(demo_model_path()), "-o", str(out), "--recipe", "fp16", "--force", home=tmp_path
    )
    assert (
        forced.returncode == 0
        and json.loads((out / "manifest.json").read_text())["recipe"][0]["name"] == "fp16"
    )


def test_unmet_tolerance_keeps_the_artifact_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "sparse"
    proc = run(
        "compress",
        str(demo_model_path()),
        "-o",
        str(out),
        "--recipe",
        "prune-magnitude:0.9",
        "--eval",
        EVAL,
        "--max-accuracy-drop",
        "0.5",
        home=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "exceeds --max-accuracy-drop 0.5" in proc.stderr
    guard = json.loads((out / "manifest.json").read_text())["accuracy_guard"]
    assert guard["met"] is False and guard["reason"] == "no float fallback for prune-magnitude"


def test_json_stdout_stays_clean_with_histogram_calibration(tmp_path: Path) -> None:
    proc = run(
        "compress",
        str(demo_model_path()),
        "-o",
        str(tmp_path / "pct"),
        "--recipe",
        "int8-static:calib=percentile",
        "--calib",
        CALIB,
        "--json",
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)  # onnxruntime's calibrator prints progress: not on stdout
    assert manifest["recipe"][0]["report"]["calibration"]["method"] == "percentile"


def digit_folder(directory: Path, x: np.ndarray, labels: np.ndarray) -> Path:
    """The held-out digits as 8-bit grayscale PNGs in class subfolders, the ImageFolder layout."""
    from PIL import Image

    for index, (image, label) in enumerate(zip(x, labels, strict=True)):
        folder = directory / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image[0] * 255).astype(np.uint8), mode="L").save(folder / f"{index}.png")
    return directory


def test_image_folders_as_calibration_and_labelled_eval_data(tmp_path: Path) -> None:
    with np.load(EVAL) as data:
        images = digit_folder(tmp_path / "digits", data["input"], data["labels"])
    manifest = lib_compress(
        "int8-static", tmp_path / "out", calib=images, eval=images, image_preprocess="unit"
    )
    fid = manifest["fidelity"]
    assert fid["rows"] == 360
    assert fid["accuracy"]["before"] >= 0.98  # labels from folder names match the real digits
    assert fid["accuracy"]["drop_points"] <= 2.0
    proc = run(
        "compress",
        str(demo_model_path()),
        "-o",
        str(tmp_path / "bad"),
        "--recipe",
        "int8-static",
        "--calib",
        str(images),
        "--image-preprocess",
        "zscore",
        home=tmp_path,
    )
    assert (
        proc.returncode == 2
        and "'zscore' is not one of 'unit', 'imagenet', 'symmetric', 'raw'" in proc.stderr
    )
    assert "Value error" not in proc.stderr


def test_int4_weight_only(tmp_path: Path) -> None:
    model = low_rank_mlp(tmp_path / "mlp.onnx")
    calib = tmp_path / "calib.npz"
    np.savez(calib, input=np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32))
    manifest = lib_compress("int4-weight", tmp_path / "int4", model=model, calib=calib)
    assert manifest["recipe"][0]["report"]["packed"] == 1
    assert manifest["size_ratio"] > 5  # 4-bit weights plus one scale per 32 of them
    assert manifest["fidelity"]["cosine_mean"] > 0.98
    ops = {n.op_type for n in onnx.load(str(tmp_path / "int4" / "model.onnx")).graph.node}
    assert "MatMulNBits" in ops and "MatMul" not in ops


@pytest.mark.parametrize("drop", ["-3", "nan", "1e9"])
def test_max_accuracy_drop_out_of_range_is_named(tmp_path: Path, drop: str) -> None:
    """An accuracy drop is in points, 0 to 100: anything else is exit 2 naming the option and the
    value, before the data is read (a negative one used to be reported as a missing --eval)."""
    out = tmp_path / "out"
    proc = run_cli("compress", str(demo_model_path()), "-o", str(out), "--recipe", "int8-dynamic",
                   "--max-accuracy-drop", drop, home=tmp_path / "home")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("edgekit: error: --max-accuracy-drop ")
        and "[0, 100]" in lines[0]
    )
    assert not out.exists()
