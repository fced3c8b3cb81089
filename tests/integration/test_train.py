"""Training-aware compression end to end on the real digits data (scikit-learn ships it):
QAT, prune-and-fine-tune and multi-teacher distillation, through the library and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgekit.core.artifacts import load_artifact, quality_summary
from edgekit.data import demo_model_path
from tests.cli_run import run_cli

torch = pytest.importorskip("torch", reason="the train extra (CPU PyTorch) is not installed")
pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn (train extra)")
pytestmark = pytest.mark.integration

from edgekit.data.digits import load_digits_split  # noqa: E402
from edgekit.train import examples  # noqa: E402
from edgekit.train.data import TrainData  # noqa: E402
from edgekit.train.distill import distill  # noqa: E402
from edgekit.train.loop import STOP_AFTER_EPOCH_ENV, FitOptions, fit  # noqa: E402
from edgekit.train.prune import prune_finetune  # noqa: E402
from edgekit.train.qat import qat  # noqa: E402


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    return load_digits_split(0)


@pytest.fixture(scope="module")
def train(digits: dict[str, np.ndarray]) -> TrainData:
    return TrainData({"input": digits["x_train"]}, digits["y_train"], "digits-train")


@pytest.fixture(scope="module")
def heldout(digits: dict[str, np.ndarray]) -> TrainData:
    return TrainData({"input": digits["x_test"]}, digits["y_test"], "digits-test")


@pytest.fixture(scope="module")
def trained_ds_cnn(train: TrainData) -> Any:
    torch.manual_seed(0)
    model, _ = fit(examples.ds_cnn(16), "float", train, ["input"], FitOptions(8, 3e-3, 64, seed=0))
    return model


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory, digits: dict[str, np.ndarray]) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    np.savez(folder / "train.npz", input=digits["x_train"], labels=digits["y_train"])
    np.savez(folder / "eval.npz", input=digits["x_test"], labels=digits["y_test"])
    np.savez(folder / "rgb.npz", input=np.repeat(digits["x_test"], 3, axis=1), labels=digits["y_test"])
    return folder


def op_types_after_optimisation(model: Path, tmp_path: Path) -> set[str]:
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return {node.op_type for node in onnx.load(str(tmp_path / "optimised.onnx")).graph.node}


def test_qat_artifact_runs_as_int8_and_bench_accepts_it(
    trained_ds_cnn: Any, train: TrainData, heldout: TrainData, tmp_path: Path
) -> None:
    out = tmp_path / "qat"
    result = qat(trained_ds_cnn, train, heldout, train.inputs["input"], epochs=1, bits=8, out_dir=out)
    manifest = json.loads((out / "manifest.json").read_text())
    accuracy = manifest["training"]["accuracy"]
    assert set(accuracy) == {"float", "ptq", "qat", "qat_fake_quant_torch"}
    assert accuracy["float"] > 0.8 and accuracy["qat"] > accuracy["float"] - 0.05
    assert manifest["fidelity"]["accuracy"]["after"] == pytest.approx(accuracy["qat"])
    assert manifest["training"]["history"][0]["phase"] == "qat"
    assert result.accuracy == accuracy
    assert "QLinearConv" in op_types_after_optimisation(out / "model.onnx", tmp_path)
    # the int8 weights onnxruntime stores dequantize to exactly the weights QAT trained
    graph = onnx.load(str(out / "model.onnx")).graph
    stored = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    trained = {n.removesuffix(".weight"): p.detach().numpy() for n, p in result.model.named_parameters()}
    checked = 0
    for node in graph.node:
        weight = stored.get(node.input[0])
        if node.op_type == "DequantizeLinear" and weight is not None and weight.ndim > 1:
            scale = stored[node.input[1]].reshape(-1, *([1] * (weight.ndim - 1)))
            layer = node.input[0].removesuffix(".weight_quantized")
            # a different grid would be off by up to half a step (scale / 2)
            assert np.allclose(weight * scale, trained[layer], rtol=0, atol=float(scale.max()) * 1e-4), layer
            checked += 1
    assert checked == 6
    assert quality_summary(load_artifact(out).manifest)["accuracy"] == pytest.approx(accuracy["qat"])
    proc = run_cli("bench", str(out), "--json", "--runs", "20", "--min-seconds", "0", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["artifact"]["sha256"] == manifest["artifact"]["sha256"]


def test_prune_finetune_makes_a_smaller_dense_model_with_per_step_history(
    trained_ds_cnn: Any, train: TrainData, heldout: TrainData, tmp_path: Path
) -> None:
    out = tmp_path / "pruned"
    prune_finetune(trained_ds_cnn, train, heldout, 0.5, 2, epochs_per_step=1, out_dir=out)
    manifest = json.loads((out / "manifest.json").read_text())
    history = manifest["training"]["history"]
    assert [step["step"] for step in history] == [0, 1, 2]
    sizes = [step["onnx_size_bytes"] for step in history]
    assert sizes[0] > sizes[1] > sizes[2]
    assert all(step["accuracy_finetuned"] is not None for step in history[1:])
    assert (out / "model.onnx").stat().st_size < (out / "float.onnx").stat().st_size
    assert history[2]["accuracy_finetuned"] >= history[2]["accuracy_pruned"]
    assert manifest["fidelity"]["accuracy"]["after"] == pytest.approx(history[2]["accuracy_finetuned"])


def test_distill_from_an_onnx_and_a_torch_teacher(
    train: TrainData, heldout: TrainData, tmp_path: Path
) -> None:
    torch.manual_seed(1)
    mlp, _ = fit(examples.mlp(), "teacher", train, ["input"], FitOptions(5, 3e-3, 64, seed=1))
    torch.manual_seed(0)
    student = examples.tiny_cnn()
    result = distill(
        [demo_model_path(), mlp],
        student,
        train,
        heldout,
        4.0,
        0.7,
        "confidence",
        epochs=6,
        learning_rate=1e-2,
        out_dir=tmp_path / "student",
    )
    manifest = json.loads((tmp_path / "student" / "manifest.json").read_text())
    teachers = manifest["training"]["teachers"]
    assert teachers[0] == {"onnx": str(demo_model_path())} and teachers[1]["torch"] == "Sequential"
    assert len(result.accuracy["teachers"]) == 2 and result.accuracy["ensemble"] > 0.9
    assert result.accuracy["student"] > 0.5
    assert manifest["fidelity"]["accuracy"]["before"] == pytest.approx(result.accuracy["ensemble"])
    session = ort.InferenceSession(
        str(tmp_path / "student" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert session.get_inputs()[0].shape[0] == "batch"


def config(folder: Path, technique: str, **sections: str) -> Path:
    base = {
        "model": 'factory = "edgekit.train.examples:ds_cnn"\nkwargs = { width = 8 }',
        "data": f'train = "{folder / "train.npz"}"\neval = "{folder / "eval.npz"}"',
        "train": "float_epochs = 2\nepochs = 1\nlearning_rate = 1e-3",
    }
    base.update(sections)
    path = folder / f"{technique}.toml"
    path.write_text("\n".join(f"[{name}]\n{body}" for name, body in base.items()) + "\n")
    return path


def test_cli_prints_progress_and_writes_the_artifact(npz: Path, tmp_path: Path) -> None:
    teachers = f'[[distill.teachers]]\nonnx = "{demo_model_path()}"\n[[distill.teachers]]\n'
    teachers += 'factory = "edgekit.train.examples:mlp"\nepochs = 2'
    path = config(npz, "distill", model='factory = "edgekit.train.examples:tiny_cnn"', distill=teachers)
    path.write_text(
        path.read_text().replace("float_epochs = 2", "float_epochs = 0").replace("[distill]\n", "")
    )
    proc = run_cli("train", "distill", "--config", str(path), "-o", str(tmp_path / "out"), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "teacher-2 epoch 2/2  loss" in proc.stderr and "distill epoch 1/1  loss" in proc.stderr
    assert "eval acc" in proc.stderr
    assert f"wrote {tmp_path / 'out'}/model.onnx" in proc.stdout
    assert not (tmp_path / "out.checkpoints").exists()  # removed once the artifact is published


def test_cli_json_and_seed_make_runs_reproducible(npz: Path, tmp_path: Path) -> None:
    path = config(npz, "prune", prune="target_ratio = 0.5\nsteps = 1")
    runs = []
    for name in ("a", "b"):
        proc = run_cli(
            "train", "prune", "--config", str(path), "-o", str(tmp_path / name), "--seed", "5", "--json",
            home=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
        assert [e["phase"] for e in events if e.get("event") == "epoch"] == ["float", "float", "prune-1"]
        runs.append(json.loads(proc.stdout))
    histories = [
        [
            [{k: v for k, v in e.items() if k != "seconds"} for e in step.get("epochs", [])]
            for step in run["training"]["history"]
        ]
        for run in runs
    ]
    assert histories[0] == histories[1] and histories[0][1][0]["loss"] > 0
    assert runs[0]["artifact"]["sha256"] == runs[1]["artifact"]["sha256"]
    assert runs[0]["artifact"]["size_bytes"] < runs[0]["source"]["size_bytes"]


def test_cli_resumes_an_interrupted_run(npz: Path, tmp_path: Path) -> None:
    path = config(npz, "qat", qat="bits = 8\nper_channel = true")
    out = tmp_path / "out"
    interrupted = run_cli(
        "train", "qat", "--config", str(path), "-o", str(out), home=tmp_path, env={STOP_AFTER_EPOCH_ENV: "1"}
    )
    assert interrupted.returncode == 130, interrupted.stderr
    assert not out.exists() and (tmp_path / "out.checkpoints" / "float.pt").is_file()
    resumed = run_cli("train", "qat", "--config", str(path), "-o", str(out), home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "float: resumed from the checkpoint of epoch 1/2" in resumed.stderr
    assert "float epoch 1/2" not in resumed.stderr and "float epoch 2/2" in resumed.stderr
    straight = run_cli("train", "qat", "--config", str(path), "-o", str(tmp_path / "straight"), home=tmp_path)
    assert straight.returncode == 0, straight.stderr
    losses = [
        [e["loss"] for e in json.loads((d / "manifest.json").read_text())["training"]["float_history"]]
        for d in (out, tmp_path / "straight")
    ]
    assert losses[0] == losses[1]


def test_cli_nan_loss_is_exit_2_naming_the_epoch_and_keeping_the_checkpoint(
    npz: Path, tmp_path: Path
) -> None:
    path = config(npz, "prune", train="float_epochs = 1\nepochs = 2\nlearning_rate = 1e30")
    proc = run_cli("train", "prune", "--config", str(path), "-o", str(tmp_path / "out"), home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("edgekit: error: prune-1: the training loss became")
    assert "in epoch 1" in error and "(float, epoch 1)" in error
    assert (tmp_path / "out.checkpoints" / "float.pt").is_file()
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.tmp-*"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": 'factory = "no_such_package.models:net"'}, "cannot import no_such_package.models"),
        ({"data": 'train = "{train}"\neval = "{rgb}"'}, "data.eval"),
        ({"model": 'factory = "edgekit.train.examples:ds_cnn"\ninputs = { image = [1, 8, 8] }'}, "image"),
    ],
)
def test_cli_bad_input_is_exit_2_with_nothing_written(
    npz: Path, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    sections = {
        k: v.replace("{train}", str(npz / "train.npz")).replace("{rgb}", str(npz / "rgb.npz"))
        for k, v in change.items()
    }
    path = config(npz, "qat", **sections)
    proc = run_cli("train", "qat", "--config", str(path), "-o", str(tmp_path / "out"), home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: error: ") and message in lines[0]
    assert not any(tmp_path.glob("out*")) and not any(tmp_path.glob(".out*"))


def test_without_torch_one_line_names_the_install_command(npz: Path, tmp_path: Path) -> None:
    path = config(npz, "qat")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import edgekit.cli.main as main\n"
        f"sys.argv = ['edgekit', 'train', 'qat', '--config', {str(path)!r}, '-o', {str(tmp_path / 'o')!r}]\n"
        "main.run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "edgekit: error: edgekit train qat needs PyTorch, which is not installed: "
        "pip install torch==2.13.0 (CPU build), or pip install -e '.[train]'"
    )


def test_training_candidates_for_optimize_are_judged_on_the_heldout_rows(npz: Path, tmp_path: Path) -> None:
    from edgekit.core.profiles import load_profile
    from edgekit.train.candidates import training_candidates

    path = config(npz, "candidates", qat="bits = 8", prune="target_ratio = 0.5\nsteps = 1")
    heldout = tmp_path / "heldout.npz"
    with np.load(npz / "eval.npz") as data:
        np.savez(heldout, input=data["input"][:100], labels=data["labels"][:100])
    events: list[dict[str, Any]] = []
    made = training_candidates(path, load_profile("local"), None, heldout, tmp_path / "opt", 0, events.append)
    assert [name for name, _ in made] == ["train-qat", "train-prune"]
    for _, directory in made:
        manifest = load_artifact(directory).manifest or {}
        assert manifest["fidelity"]["rows"] == 100 and manifest["fidelity"]["data"] == str(heldout)
        assert manifest["fidelity"]["accuracy"]["drop_points"] is not None
    assert {e["candidate"] for e in events} == {"train-qat", "train-prune"}
    again: list[dict[str, Any]] = []
    assert (
        training_candidates(path, load_profile("local"), None, heldout, tmp_path / "opt", 0, again.append)
        == made
    )
    assert again == []  # finished candidates are reused, not retrained


def test_optimize_also_tries_the_training_candidates(npz: Path, tmp_path: Path) -> None:
    path = config(npz, "optimize", qat="bits = 8", prune="target_ratio = 0.5\nsteps = 1")
    proc = run_cli(
        "optimize", str(demo_model_path()), "--eval", str(npz / "eval.npz"), "--recipe", "fp16",
        "--train-config", str(path), "--max-accuracy-drop", "100", "--runs", "50", "--min-seconds", "0.2",
        "-o", str(tmp_path / "out"), "--json", home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    candidates = {c["name"]: c for c in json.loads(proc.stdout)["devices"]["local"]["candidates"]}
    assert list(candidates) == ["float", "fp16", "train-qat", "train-prune"]
    for name in ("train-qat", "train-prune"):  # trained, then judged and measured like the others
        assert candidates[name]["latency_p50_ms"] is not None and candidates[name]["reason"]
        assert Path(candidates[name]["artifact"]).parent == tmp_path / "out" / "candidates" / "local"
