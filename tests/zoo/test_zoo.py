"""The real-model tier: pretrained models from PyPI packages through bench and compress.

What every run must hold, for a valid model and valid real-looking inputs (tests/zoo/registry.py):
no exit 70 and no traceback (exit 0, 1 or 2 with a one-line error), nothing left in the working
directory (the command runs in an empty folder, its output goes elsewhere), and no degraded artifact
reported as fine. Bench measures (exit 0, or 1 for a missed budget); compress writes an artifact
and its manifest (exit 0, or 1 when it says the artifact is degraded), and an artifact written with
exit 0 holds, on held-out feeds, a mean per-feed cosine of at least COSINE_FLOOR on every float
output (measured here with onnxruntime, independently of edgekit's own fidelity, which is recorded
beside it). A model saved with external data: the manifest's source size covers its data file.

A row that fails today because of a known kind of fault is marked xfail(strict=True) with that
kind, so it turns into a failure the day the fault is fixed and the mark must go; rows are never
skipped or dropped. The package a model comes from must be installed (scripts/zoo_models.sh,
which scripts/test runs): a missing one is a failure, not a skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.zoo.helpers import (
    COSINE_FLOOR,
    artifact_file,
    bench_args,
    compress_args,
    output_fidelity,
    run_edgekit,
    stage_model,
    write_samples,
)
from tests.zoo.registry import ZOO, ZooModel

pytestmark = pytest.mark.zoo

CALIB_FEEDS = 24  # not a multiple of the batch sizes calibrators like, on purpose
EVAL_FEEDS = 12

# Known faults, one kind each (the failing-input cases in tests/data/cases stand for the same kinds).

XFAIL: dict[tuple[str, str], str] = {}  # none today; a new fault kind gets its row here


def _row_id(model: ZooModel, step: str) -> str:
    return f"{model.name}-{step}"


def _cases() -> list:
    cases = []
    for model in ZOO:
        if not model.small:
            continue
        extra = ("bench-generated",) if model.is_tflite else ()  # TFLite: also on generated inputs
        for step in ("bench", *extra, *model.recipes):
            reason = XFAIL.get((model.name, step))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(model, step, id=_row_id(model, step), marks=marks))
    return cases


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, Path, list]]:
    """Per model (lazily): the model file, its calibration and evaluation sets, the eval feeds."""
    cache: dict[str, tuple[Path, Path, Path, list]] = {}

    def get(model: ZooModel) -> tuple[Path, Path, Path, list]:
        if model.name not in cache:
            folder = tmp_path_factory.mktemp(model.name)
            path = stage_model(model, folder / "model")
            eval_feeds = model.make_feeds(EVAL_FEEDS, 1)
            calib = write_samples(model, model.make_feeds(CALIB_FEEDS, 0), folder / "calib")
            evaluation = write_samples(model, eval_feeds, folder / "eval")
            cache[model.name] = (path, calib, evaluation, eval_feeds)
        return cache[model.name]

    return get  # type: ignore[return-value]


def _check_clean_exit(proc, cwd: Path, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode != 70, f"internal error (exit 70): {proc.stderr.strip()[-400:]}"
    assert proc.returncode in (0, 1, 2), f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-800:]
    if proc.returncode == 2:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("edgekit:")]
        assert len(errors) == 1, f"not one error line: {proc.stderr[-400:]}"
    left = sorted(p.name for p in cwd.iterdir())
    assert not left, f"left in the working directory: {left}"
    scratch = sorted(p.name for p in tmp.rglob("*") if p.suffix in {".onnx", ".data", ".tflite"})
    assert not scratch, f"model files left in the temp directory: {scratch}"


@pytest.mark.parametrize(("model", "step"), _cases())
def test_zoo_model(model: ZooModel, step: str, staged, tmp_path: Path, record_property) -> None:  # type: ignore[no-untyped-def]
    path, calib, evaluation, eval_feeds = staged(model)
    cwd, home, tmp, out = (tmp_path / d for d in ("cwd", "home", "tmp", "out"))
    for folder in (cwd, home, tmp):
        folder.mkdir()
    if step.startswith("bench"):
        # "bench-generated": generated inputs
        proc = run_edgekit(bench_args(path, evaluation if step == "bench" else None), cwd, home, tmp)
        record_property("exit", proc.returncode)
        _check_clean_exit(proc, cwd, tmp)
        # Real inputs for a valid model: bench measures (exit 1 is a missed budget of the local profile).
        assert proc.returncode in (0, 1), proc.stderr.strip()[-400:]
        result = json.loads(proc.stdout)
        assert result, "no result"
        return
    proc = run_edgekit(compress_args(path, step, calib, evaluation, out), cwd, home, tmp)
    record_property("exit", proc.returncode)
    _check_clean_exit(proc, cwd, tmp)
    # A valid model with real calibration data gets an artifact (exit 1: written but degraded).
    assert proc.returncode in (0, 1), proc.stderr.strip()[-400:]
    artifact = artifact_file(out)
    assert artifact is not None and (out / "manifest.json").is_file(), sorted(out.glob("*"))
    manifest = json.loads((out / "manifest.json").read_text())
    record_property("edgekit_fidelity", json.dumps(manifest.get("fidelity"), default=str)[:2000])
    if model.external_data:  # the source's size covers the model file and its data file(s)
        on_disk = sum(p.stat().st_size for p in path.parent.iterdir())
        assert manifest["source"]["size_bytes"] == on_disk, (manifest["source"], on_disk)
    if artifact.suffix != ".onnx":
        return
    table = output_fidelity(path, artifact, eval_feeds)
    record_property("fidelity", json.dumps(table))
    if proc.returncode == 0:  # exit 1: degraded (or a missed budget), said so
        low = {name: row for name, row in table.items() if not row["cosine"] >= COSINE_FLOOR}
        assert not low, f"degraded artifact reported as fine (exit 0): {low}"
