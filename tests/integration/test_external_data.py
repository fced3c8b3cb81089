"""Models with external data (weights in files next to the model, named by each tensor's
`location`): found wherever edgekit runs, counted in the artifact's size and sha256, pushed to a
board with the model (and reused by hash), and kept external by compression. Real onnx,
onnxruntime, local agent and OpenSSH sshd; the failing-input case tests/data/cases/ext is copied
to tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.core.artifacts import load_artifact
from edgekit.testing.ssh import Sshd, sshd_missing_reason, write_inventory

pytestmark = pytest.mark.integration

CASE = Path(__file__).resolve().parents[1] / "data" / "cases" / "ext"
REPO = Path(__file__).resolve().parents[2]
UMASK_SH = ["sh", "-c", 'umask "$1" && shift && exec "$@"', "sh"]  # umask MASK, then the command
FAST = ["--runs", "20", "--min-seconds", "0", "--json", "--no-store"]


def edgekit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it from `cwd` (this tree's edgekit, whatever the working directory)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "EDGEKIT_HOME": str(home), "PYTHONPATH": path, "COLUMNS": "200"},
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def copy_case(tmp_path: Path) -> Path:
    """The case's model and data file in tmp_path/models/ext/; returns the model's path."""
    folder = tmp_path / "models" / "ext"
    shutil.copytree(CASE, folder)
    return folder / "ext_model.onnx"


def make_external_model(path: Path, rows: int, cols: int, location: str) -> Path:
    """x [1, rows] float32 -> MatMul(W [rows, cols]) -> Relu -> y [1, cols], W and bias external in
    `location` (relative to the model's directory)."""
    rng = np.random.default_rng(rows * 1000 + cols)
    weight = numpy_helper.from_array(rng.normal(size=(rows, cols)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(cols,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
            helper.make_node("Add", ["h", "b"], ["a"], name="add"),
            helper.make_node("Relu", ["a"], ["y"], name="relu"),
        ],
        "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (path.parent / location).parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, location=location, size_threshold=0)
    return path


def listing_sha(folder: Path, names: list[str]) -> str:
    """What `sha256sum NAMES... | sha256sum` prints in `folder`."""
    lines = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    return hashlib.sha256(lines.encode()).hexdigest()


def test_case_benches_from_another_directory(tmp_path: Path) -> None:
    model = copy_case(tmp_path)
    run = edgekit("bench", "models/ext/ext_model.onnx", *FAST, cwd=tmp_path, home=tmp_path / "home")
    assert run.returncode == 0, run.stderr
    artifact = json.loads(run.stdout)["artifact"]
    folder = model.parent
    assert [f["name"] for f in artifact["files"]] == ["ext_model.onnx", "ext_model.onnx.data"]
    assert artifact["size_bytes"] == 159 + 32768
    assert artifact["sha256"] == listing_sha(folder, ["ext_model.onnx", "ext_model.onnx.data"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "models"]  # nothing left in cwd


@pytest.mark.parametrize(("rows", "cols"), [(33, 90), (100, 256)])
def test_size_and_hash_cover_the_data(tmp_path: Path, rows: int, cols: int) -> None:
    model = make_external_model(tmp_path / "m" / "net.onnx", rows, cols, "weights/net.bin")
    artifact = load_artifact(model)
    data = model.parent / "weights" / "net.bin"
    assert [f.name for f in artifact.files] == ["net.onnx", "weights/net.bin"]
    assert artifact.size_bytes == model.stat().st_size + data.stat().st_size
    assert data.stat().st_size == 4 * (rows * cols + cols)
    assert artifact.sha256 == listing_sha(model.parent, ["net.onnx", "weights/net.bin"])
    before = artifact.sha256
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0xFF  # one weight changes: so does the artifact's hash
    data.write_bytes(bytes(raw))
    assert load_artifact(model).sha256 != before


def test_a_missing_data_file_is_exit_2_naming_it(tmp_path: Path) -> None:
    model = copy_case(tmp_path)
    (model.parent / "ext_model.onnx.data").unlink()
    run = edgekit("bench", str(model), *FAST, cwd=tmp_path, home=tmp_path / "home")
    assert run.returncode == 2, run.stderr
    assert "external data file 'ext_model.onnx.data' not found next to the model" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_location_outside_the_models_directory_is_refused(tmp_path: Path) -> None:
    model = make_external_model(tmp_path / "a" / "net.onnx", 33, 90, "net.bin")
    proto = onnx.load(str(model), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../net.bin"
    onnx.save(proto, str(model))
    shutil.copy(model.parent / "net.bin", tmp_path / "net.bin")
    run = edgekit("bench", str(model), *FAST, cwd=tmp_path, home=tmp_path / "home")
    assert run.returncode == 2, run.stderr
    assert "must be a relative path inside the model's directory" in run.stderr


def test_compress_keeps_weights_external_and_lists_the_files(tmp_path: Path) -> None:
    model = copy_case(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    run = edgekit(
        "compress", str(model), "--recipe", "int8-dynamic", "-o", "out/ext", cwd=work, home=tmp_path / "home"
    )
    assert run.returncode == 0, run.stderr
    assert "smaller than 32,927" in run.stdout + run.stderr  # the source's size counts its data file
    out = work / "out" / "ext"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx", "model.onnx.data"]
    manifest = json.loads((out / "manifest.json").read_text())
    files = manifest["artifact"]["files"]
    assert [f["name"] for f in files] == ["model.onnx", "model.onnx.data"]
    assert manifest["artifact"]["size_bytes"] == sum(f["size_bytes"] for f in files)
    assert manifest["artifact"]["sha256"] == listing_sha(out, ["model.onnx", "model.onnx.data"])
    assert manifest["source"]["size_bytes"] == 159 + 32768
    assert load_artifact(out).sha256 == manifest["artifact"]["sha256"]  # the manifest's hash checks
    proto = onnx.load(str(out / "model.onnx"), load_external_data=False)
    assert any(t.data_location == TensorProto.EXTERNAL for t in proto.graph.initializer)
    # the artifact runs from anywhere and matches the float model within int8 error
    x = np.random.default_rng(3).normal(size=(1, 64)).astype(np.float32)
    want = ort.InferenceSession(str(model)).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(out / "model.onnx")).run(None, {"x": x})[0]
    cosine = float(np.sum(got * want) / (np.linalg.norm(got) * np.linalg.norm(want)))
    assert cosine > 0.99, cosine  # the data file's weights, not zeros or another tensor's bytes
    assert sorted(p.name for p in work.iterdir()) == ["out"]  # no scratch files in the working dir


def test_compress_of_a_one_file_model_stays_one_file(tmp_path: Path) -> None:
    model = make_external_model(tmp_path / "m" / "net.onnx", 90, 33, "net.bin")
    inline = tmp_path / "inline.onnx"
    onnx.save(onnx.load(str(model)), str(inline))
    run = edgekit(
        "compress", str(inline), "--recipe", "int8-dynamic", "-o", "out", cwd=tmp_path, home=tmp_path / "home"
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "model.onnx"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    sha = hashlib.sha256((tmp_path / "out" / "model.onnx").read_bytes()).hexdigest()
    assert manifest["artifact"]["sha256"] == sha  # one file: its own sha256, as before


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_artifact_directories_get_the_users_normal_permissions(tmp_path: Path, umask: int) -> None:
    model = copy_case(tmp_path)
    command = ["compress", str(model), "--recipe", "int8-dynamic", "-o", str(tmp_path / "out")]
    run = subprocess.run(
        [*UMASK_SH, f"{umask:03o}", sys.executable, "-m", "edgekit.cli.main", *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "EDGEKIT_HOME": str(tmp_path / "home")},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    for name in ("model.onnx", "model.onnx.data", "manifest.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


needs_sshd = pytest.mark.skipif(sshd_missing_reason() is not None, reason=str(sshd_missing_reason()))


@needs_sshd
def test_push_sends_the_data_files_then_reuses_them(sshd: Sshd, tmp_path: Path) -> None:
    model = copy_case(tmp_path)
    workdir = tmp_path / "board home"
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("pi", workdir))
    args = ["bench", str(model), "--device", "pi", "--inventory", str(inventory), *FAST]
    first = edgekit(*args, cwd=tmp_path, home=tmp_path / "home")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    sha = result["artifact"]["sha256"]
    assert result["transfer"]["bytes_sent"] == 159 + 32768
    assert result["transfer"]["skipped_cached"] is False
    staged = workdir / "artifacts" / sha
    assert sorted(p.name for p in staged.iterdir()) == ["ext_model.onnx", "ext_model.onnx.data"]
    for name in ("ext_model.onnx", "ext_model.onnx.data"):
        assert (staged / name).read_bytes() == (model.parent / name).read_bytes()
    second = json.loads(edgekit(*args, cwd=tmp_path, home=tmp_path / "home").stdout)
    assert (second["transfer"]["bytes_sent"], second["transfer"]["skipped_cached"]) == (0, True)
    # a data file damaged on the board is sent again, alone
    (staged / "ext_model.onnx.data").write_bytes(b"\0" * 100)
    third = json.loads(edgekit(*args, cwd=tmp_path, home=tmp_path / "home").stdout)
    assert third["transfer"]["bytes_sent"] == 32768
    assert (staged / "ext_model.onnx.data").read_bytes() == (
        model.parent / "ext_model.onnx.data"
    ).read_bytes()


@needs_sshd
def test_a_compressed_artifact_with_external_data_runs_on_the_board(sshd: Sshd, tmp_path: Path) -> None:
    model = make_external_model(tmp_path / "m" / "net.onnx", 256, 100, "net.onnx.data")
    out = tmp_path / "int8"
    made = edgekit(
        "compress", str(model), "--recipe", "int8-dynamic", "-o", str(out), cwd=tmp_path, home=tmp_path
    )
    assert made.returncode == 0, made.stderr
    workdir = tmp_path / "board"
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("pi", workdir))
    run = edgekit(
        "bench", str(out), "--device", "pi", "--inventory", str(inventory), *FAST, cwd=tmp_path, home=tmp_path
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert result["artifact"]["sha256"] == manifest["artifact"]["sha256"]
    assert result["transfer"]["bytes_sent"] == manifest["artifact"]["size_bytes"]
    assert result["latency_ms"]["n"] == 20
    staged = workdir / "artifacts" / result["artifact"]["sha256"]
    assert sorted(p.name for p in staged.iterdir()) == ["model.onnx", "model.onnx.data"]


def test_optimize_resume_key_covers_the_data_and_matches_compress(tmp_path: Path) -> None:
    """A resumed optimize search must not reuse state made from other weights, and must reuse
    the candidates compress made from the same ones (their manifests name the source by the
    artifact hash rule)."""
    from edgekit.optimize.search import OptimizeOptions, search_key

    model = make_external_model(tmp_path / "m" / "net.onnx", 40, 24, "net.onnx.data")
    key = search_key(OptimizeOptions(model=model, eval=model, out_dir=tmp_path / "o"))["model_sha256"]
    assert key == load_artifact(model).sha256 != hashlib.sha256(model.read_bytes()).hexdigest()
    data = model.parent / "net.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF  # the model file is unchanged, one weight is not
    data.write_bytes(bytes(raw))
    changed = search_key(OptimizeOptions(model=model, eval=model, out_dir=tmp_path / "o"))["model_sha256"]
    assert changed != key
