"""A model over protobuf's 2 GB limit, end to end: build, hash, compress with each recipe, check, remove.

Not part of the test suite (it writes and reads several GB and takes minutes):

    python3 benchmarks/large_model.py [--gib 2.25] [--dim 8192] [--recipes R1,R2,...]

Builds, in a temporary directory that is removed on success and failure alike, an MLP of
`layers` MatMul layers x[1, D] @ W_i[D, D] (float32, D = 8192 by default) whose weights
total more than 2**31 bytes, saved with external data (`model.onnx` + `model.onnx.data`, the
only form such a model can take). Then, from a separate working directory:

1. `edgekit.core.artifacts.load_artifact` on the source must list both files, with size_bytes
   their sum;
2. for each recipe (int8-dynamic, int8-static calibrated on 24 random rows, fp16, int4-weight),
   `edgekit compress model.onnx --recipe R -o out-R` must exit 0 and write
   `out-R/model.onnx` + `out-R/model.onnx.data` (the source had external data, so the artifact
   keeps it), whose manifest lists both files, whose sha256 checks (`load_artifact`), and whose
   output on one random row has cosine >= MIN_COSINE[R] with the float model's (onnxruntime,
   CPU); the artifact's files are removed after its checks (disk);
3. the working directory holds nothing but the `out-R` folders afterwards.

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
# Output cosine floor per recipe on one random row through every layer (4-bit weights lose more).
MIN_COSINE = {"int8-dynamic": 0.99, "int8-static": 0.99, "fp16": 0.999, "int4-weight": 0.95}


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


def run(root: Path, dim: int, layers: int, recipes: list[str]) -> list[str]:
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

    env = {**os.environ, "EDGEKIT_HOME": str(root / "home"), "PYTHONPATH": str(REPO)}
    calib = root / "calib.npz"  # outside the working directory, as a user's data would be
    np.savez(calib, x=np.random.default_rng(2).standard_normal((24, dim), dtype=np.float32))
    x = np.random.default_rng(1).standard_normal((1, dim), dtype=np.float32)
    want = output(model, x)
    for recipe in recipes:
        failures += compress_and_check(model, recipe, work, env, calib, x, want)
    if sorted(p.name for p in work.iterdir()) != sorted(f"out-{r}" for r in recipes):
        failures.append(f"left in the working directory: {sorted(p.name for p in work.iterdir())}")
    return failures


def compress_and_check(
    model: Path, recipe: str, work: Path, env: dict[str, str], calib: Path, x: np.ndarray, want: np.ndarray
) -> list[str]:
    """`edgekit compress MODEL --recipe RECIPE -o out-RECIPE` in `work`, then the checks of the
    module doc on its artifact; removes the artifact afterwards (disk), keeping the empty folder."""
    failures: list[str] = []
    started = time.perf_counter()
    command = [sys.executable, "-m", "edgekit.cli.main", "compress", str(model), "--recipe", recipe]
    if recipe == "int8-static":
        command += ["--calib", str(calib)]
    out = work / f"out-{recipe}"
    proc = subprocess.run(
        [*command, "-o", out.name], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    step(f"compress {recipe}", started, exit=proc.returncode)
    if proc.returncode != 0:
        failures.append(f"{recipe}: compress exit {proc.returncode}: {proc.stderr.strip()[-600:]}")
        out.mkdir(exist_ok=True)
        return failures
    manifest = json.loads((out / "manifest.json").read_text())
    listed = [f["name"] for f in manifest["artifact"]["files"]]
    artifact = load_artifact(out)
    print(
        f"  {recipe} artifact: files={listed}, size_bytes={manifest['artifact']['size_bytes']:,}, "
        f"size_ratio={manifest['size_ratio']:.2f}x",
        flush=True,
    )
    if listed != ["model.onnx", "model.onnx.data"]:
        failures.append(f"{recipe}: artifact files: {listed}")
    if artifact.sha256 != manifest["artifact"]["sha256"]:
        failures.append(f"{recipe}: artifact sha256 does not match its manifest")
    started = time.perf_counter()
    got = output(out / "model.onnx", x)
    cosine = float(want @ got / (np.linalg.norm(want) * np.linalg.norm(got)))
    step(f"  compare {recipe}", started, cosine=f"{cosine:.5f}")
    floor = MIN_COSINE[recipe]
    if not cosine >= floor:
        failures.append(f"{recipe}: cosine {cosine:.5f} < {floor}")
    for path in list(out.iterdir()):
        path.unlink()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.25, help="weight size in GiB (default 2.25)")
    parser.add_argument("--dim", type=int, default=8192, help="layer width D (default 8192)")
    parser.add_argument(
        "--recipes",
        default=",".join(MIN_COSINE),
        help=f"comma-separated, from {', '.join(MIN_COSINE)} (default all)",
    )
    args = parser.parse_args()
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in recipes if r not in MIN_COSINE]
    if unknown or not recipes:
        parser.error(f"--recipes: unknown {unknown}; from {', '.join(MIN_COSINE)}")
    layers = max(1, round(args.gib * 2**30 / (args.dim * args.dim * 4)))
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 3 * args.gib * 2**30:
        print(f"needs about {3 * args.gib:.1f} GiB free in {tempfile.gettempdir()}, has {free / 2**30:.1f}")
        return 1
    with tempfile.TemporaryDirectory(prefix="edgekit-large-") as root:
        failures = run(Path(root), args.dim, layers, recipes)
    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
