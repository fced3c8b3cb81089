"""Shared by the zoo tests and benchmarks/zoo.py: write a model's inputs, run the CLI, measure fidelity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.zoo.registry import Feed, ZooModel, model_path

# The quality floor the zoo holds an exit-0 artifact to (the rule the point 3 asks for):
# worst-output cosine similarity with the float model >= 0.90 over the held-out feeds.
COSINE_FLOOR = 0.90


def write_npz(feeds: list[Feed], path: Path) -> Path:
    """One .npz, every input's feeds concatenated on the leading (row) axis."""
    np.savez(path, **{name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]})
    return path


def write_feed_folder(feeds: list[Feed], folder: Path) -> Path:
    """A folder of .npz files, each one complete feed (any shapes, scalars included)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, feed in enumerate(feeds):
        np.savez(folder / f"feed_{index:04d}.npz", **feed)
    return folder


def write_samples(model: ZooModel, feeds: list[Feed], where: Path) -> Path:
    return write_feed_folder(feeds, where) if model.per_feed else write_npz(feeds, where.with_suffix(".npz"))


def stage_model(model: ZooModel, folder: Path) -> Path:
    """Copy the model out of its package into `folder` (re-saved with external data if asked)."""
    source = model_path(model)
    assert source is not None, f"{model.package}=={model.version} is not installed (scripts/zoo_models.sh)"
    folder.mkdir(parents=True, exist_ok=True)
    if model.export is not None:
        return model.export(folder)
    target = folder / source.name
    if model.external_data:
        import onnx

        proto = onnx.load(str(source))
        onnx.save(
            proto,
            str(target),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=source.name + ".data",
            size_threshold=0,
        )
    else:
        shutil.copyfile(source, target)
    return target


QUICK_BENCH = ("--runs", "20", "--min-seconds", "0.2", "--json", "--no-store")


def bench_args(model: Path, inputs: Path | None) -> list[str]:
    """`bench MODEL [--inputs INPUTS]` with a short window, JSON out, nothing stored
    (inputs None: generated inputs)."""
    given = ["--inputs", str(inputs)] if inputs is not None else []
    return ["bench", str(model), *given, *QUICK_BENCH]


def compress_args(model: Path, recipe: str, calib: Path, evaluation: Path, out: Path) -> list[str]:
    """`compress MODEL --recipe RECIPE --calib CALIB --eval EVAL -o OUT`."""
    return [
        "compress",
        str(model),
        "--recipe",
        recipe,
        "--calib",
        str(calib),
        "--eval",
        str(evaluation),
        "-o",
        str(out),
    ]


def run_edgekit(
    args: list[str], cwd: Path, home: Path, tmp: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m edgekit.cli.main ARGS` run from `cwd` with its own EDGEKIT_HOME and TMPDIR."""
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "EDGEKIT_HOME": str(home),
        "TMPDIR": str(tmp),
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    env.pop("EDGEKIT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli.main", *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0  # a zero vector against a non-zero one
    return float(a @ b / (na * nb))


def output_fidelity(float_model: Path, artifact: Path, feeds: list[Feed]) -> dict[str, dict[str, float]]:
    """Per output (float outputs only): mean and min per-feed cosine, SQNR in dB
    (10 log10(signal power / error power)) and max abs error, artifact vs float model, onnxruntime CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    ref = ort.InferenceSession(str(float_model), options, providers=["CPUExecutionProvider"])
    art = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in ref.get_outputs()]
    got: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n in names}
    for feed in feeds:
        for name, x, y in zip(names, ref.run(names, feed), art.run(names, feed), strict=True):
            got[name].append((np.asarray(x), np.asarray(y)))
    table = {}
    for name, pairs in got.items():
        if not np.issubdtype(pairs[0][0].dtype, np.floating):
            continue
        x = np.concatenate([p[0].ravel() for p in pairs]).astype(np.float64)
        y = np.concatenate([p[1].ravel() for p in pairs]).astype(np.float64)
        noise = float(np.mean((x - y) ** 2))
        signal = float(np.mean(x**2))
        sqnr = (
            float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else float("-inf"))
        )
        per_feed = [_cosine(a, b) for a, b in pairs]
        table[name] = {
            "cosine": float(np.mean(per_feed)),
            "cosine_min": float(np.min(per_feed)),
            "sqnr_db": sqnr,
            "max_abs": float(np.max(np.abs(x - y))),
        }
    return table


def worst(table: dict[str, dict[str, float]]) -> tuple[str, dict[str, float]]:
    name = min(table, key=lambda n: table[n]["cosine"])
    return name, table[name]


def artifact_file(out: Path) -> Path | None:
    found = sorted(p for p in out.glob("*") if p.suffix in {".onnx", ".tflite"})
    return found[0] if found else None
