"""`edgekit optimize` on a per-feed sample folder (token sequences of different lengths, no
labels) and a model saved with external data: the folder is split into calibration and judging
files when no --calib is given, judged without labels, and the chosen directory, float
included, holds the model, its data file and manifest.json. Real onnx/onnxruntime, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.cli_run import run_cli
from tests.integration.test_output_rows import tagger_model

pytestmark = pytest.mark.integration
FAST = ("--runs", "30", "--min-seconds", "0.1", "--confirm", "0", "--no-store", "--json")


def _external(path: Path) -> Path:
    model = onnx.load(path)
    onnx.save(model, path, save_as_external_data=True, location="tagger.onnx.data", size_threshold=0)
    return path


def _feeds(folder: Path, lengths: list[int], seed: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for index, length in enumerate(lengths):
        np.savez(folder / f"feed_{index:03d}.npz", ids=rng.integers(0, 50, (1, length), dtype=np.int64))
    return folder


CASES = [(33, ("lowrank:0.02",), False), (40, ("int8-dynamic", "fp16"), False), (21, ("lowrank:0.02",), True)]


@pytest.mark.parametrize(("count", "recipes", "calib"), CASES)
def test_optimize_splits_a_feed_folder_and_writes_a_complete_best(
    tmp_path: Path, count: int, recipes: tuple[str, ...], calib: bool
) -> None:
    model = _external(tagger_model(tmp_path / "tagger.onnx"))
    feeds = _feeds(tmp_path / "feeds", [int(n) for n in np.linspace(3, 90, count)], count)
    out = tmp_path / "opt"
    recipe_args = [arg for recipe in recipes for arg in ("--recipe", recipe)]
    args = ("optimize", str(model), "--eval", str(feeds), "-o", str(out), *recipe_args, *FAST)
    if calib:  # a separate calibration folder: the eval folder is not split
        args += ("--calib", str(_feeds(tmp_path / "calib", [5, 17, 64, 9], count + 1)))
    proc = run_cli(*args, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    local = json.loads(proc.stdout)["devices"]["local"]
    candidates = {c["name"]: c for c in local["candidates"]}
    assert set(recipes) <= set(candidates)
    for name in recipes:  # judged (accepted or rejected), never failed for want of labels
        assert candidates[name]["status"] != "failed", candidates[name]["reason"]
    if recipes == CASES[0][1]:  # rank 1 of a 32-wide layer: far off, rejected
        assert candidates[recipes[0]]["status"] == "rejected" and local["chosen"] == "float"
    best = out / "local" / "best"
    manifest = json.loads((best / "manifest.json").read_text())
    artifact = best / manifest["artifact"]["file"]
    names = {f["name"] for f in manifest["artifact"]["files"]}
    assert all((best / name).is_file() for name in names)
    if local["chosen"] == "float":
        assert names == {"tagger.onnx", "tagger.onnx.data"}
    ids = np.arange(12, dtype=np.int64)[None] % 50
    assert ort.InferenceSession(str(artifact)).run(None, {"ids": ids})[0].shape == (1, 12, 3)
    if not calib:
        assert sorted(p.name for p in (out / "data").iterdir()) == ["calib", "heldout"]
