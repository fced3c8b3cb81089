"""A model over protobuf's 2 GB limit, end to end: build, hash, compress int8-dynamic, check, remove.

Not part of the test suite (it writes and reads several GB and takes minutes):

    python3 benchmarks/large_model.py [--gib 2.25] [--dim 8192]

Builds, in a temporary directory that is removed on success and failure alike, an MLP of
`layers` MatMul layers x[1, D] @ W_i[D, D] (float32, D = 8192 by default) whose weights
total more than 2**31 bytes, saved with external data (`model.onnx` + `model.onnx.data`, the
only form such a model can take). Then, from a separate working directory:

1. `edgekit.core.artifacts.load_artifact` on the source must list both files, with size_bytes
   their sum;
2. `edgekit compress model.onnx --recipe int8-dynamic -o out` must exit 0 and write
   `out/model.onnx` + `out/model.onnx.data` (the source had external data, so the artifact keeps
   it), whose manifest lists both files, whose sha256 checks (`load_artifact(out)`), and whose
   output on one random row has cosine >= 0.99 with the float model's (onnxruntime, CPU);
3. the working directory holds nothing but `out` afterwards.

Prints one line per step with its wall time, peak RSS of this process and its children, and the
sizes; exit 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgekit.core.artifacts import load_artifact  # noqa: E402

PROTOBUF_LIMIT = 2**31


def build(path: Path, dim: int, layers: int, seed: int = 0) -> int:
    """Write the MLP, each weight streamed straight into `model.onnx.data` (one layer in memory
    at a time, 4 KiB-aligned offsets as onnx writes them); returns the weight bytes."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    current, offset = "x", 0
    data_name = f"{path.name}.data"
    with (path.parent / data_name).open("wb") as data:
        for index in range(layers):
            weight = rng.standard_normal((dim, dim), dtype=np.float32)
            weight *= np.float32(1 / np.sqrt(dim))
            data.seek(offset)
            weight.tofile(data)
            proto = TensorProto(name=f"w{index}", data_type=TensorProto.FLOAT, dims=[dim, dim])
            proto.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data_name), ("offset", offset), ("length", weight.nbytes)):
                proto.external_data.add(key=key, value=str(value))
            weights.append(proto)
            offset = (offset + weight.nbytes + 4095) // 4096 * 4096
            out = "y" if index == layers - 1 else f"h{index}"
            nodes.append(helper.make_node("MatMul", [current, f"w{index}"], [out], name=f"mm{index}"))
            current = out
    graph = helper.make_graph(
        nodes,
        "large",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dim])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(path))  # the tensors already point at the data file
    onnx.checker.check_model(str(path))
    return layers * dim * dim * 4


def peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # ru_maxrss is KiB on Linux


def step(name: str, started: float, **facts: object) -> None:
    extra = ", ".join(f"{k}={v}" for k, v in facts.items())
    print(
        f"{name}: {time.perf_counter() - started:.1f} s, peak RSS {peak_rss_mib():,.0f} MiB, {extra}",
        flush=True,
    )


def output(model: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0], dtype=np.float64).ravel()


def run(root: Path, dim: int, layers: int) -> list[str]:
    failures: list[str] = []
    source_dir, work = root / "source", root / "work"
    source_dir.mkdir()
    work.mkdir()
    model = source_dir / "model.onnx"

    started = time.perf_counter()
    weight_bytes = build(model, dim, layers)
    step("build", started, weights=f"{weight_bytes / 2**30:.2f} GiB", over_2gb=weight_bytes > PROTOBUF_LIMIT)

    started = time.perf_counter()
    source = load_artifact(model)
    step("hash", started, files=[f.name for f in source.files], size_bytes=source.size_bytes)
    if [f.name for f in source.files] != ["model.onnx", "model.onnx.data"]:
        failures.append(f"source files: {[f.name for f in source.files]}")
    if source.size_bytes != sum(f.path.stat().st_size for f in source.files):
        failures.append("source size_bytes is not the sum of its files")

    started = time.perf_counter()
    env = {**os.environ, "EDGEKIT_HOME": str(root / "home"), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "edgekit.cli.main", "compress", str(model), "--recipe", "int8-dynamic"]
    proc = subprocess.run(
        [*command, "-o", "out"], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    step("compress int8-dynamic", started, exit=proc.returncode)
    if proc.returncode != 0:
        failures.append(f"compress exit {proc.returncode}: {proc.stderr.strip()[-600:]}")
        return failures

    out = work / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    listed = [f["name"] for f in manifest["artifact"]["files"]]
    artifact = load_artifact(out)
    print(
        f"artifact: files={listed}, size_bytes={manifest['artifact']['size_bytes']:,}, "
        f"size_ratio={manifest['size_ratio']:.2f}x",
        flush=True,
    )
    if listed != ["model.onnx", "model.onnx.data"]:
        failures.append(f"artifact files: {listed}")
    if artifact.sha256 != manifest["artifact"]["sha256"]:
        failures.append("artifact sha256 does not match its manifest")
    if sorted(p.name for p in work.iterdir()) != ["out"]:
        failures.append(f"left in the working directory: {sorted(p.name for p in work.iterdir())}")

    started = time.perf_counter()
    x = np.random.default_rng(1).standard_normal((1, dim), dtype=np.float32)
    want, got = output(model, x), output(out / "model.onnx", x)
    cosine = float(want @ got / (np.linalg.norm(want) * np.linalg.norm(got)))
    step("compare", started, cosine=f"{cosine:.5f}")
    if not cosine >= 0.99:
        failures.append(f"cosine {cosine:.5f} < 0.99")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.25, help="weight size in GiB (default 2.25)")
    parser.add_argument("--dim", type=int, default=8192, help="layer width D (default 8192)")
    args = parser.parse_args()
    layers = max(1, round(args.gib * 2**30 / (args.dim * args.dim * 4)))
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 3 * args.gib * 2**30:
        print(f"needs about {3 * args.gib:.1f} GiB free in {tempfile.gettempdir()}, has {free / 2**30:.1f}")
        return 1
    with tempfile.TemporaryDirectory(prefix="edgekit-large-") as root:
        failures = run(Path(root), args.dim, layers)
    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
