"""The artifact directory of a training run: model.onnx, float.onnx (the float reference the
accuracy drop is measured against) and manifest.json, published atomically with the helpers of
`edgekit compress`, so `bench`, reports and `optimize` read it like any compressed artifact."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.compress.data import Dataset
from edgekit.compress.fidelity import compare_outputs, run_outputs
from edgekit.core.artifact_writer import (
    ARTIFACT_STEM,
    artifact_manifest,
    staged_artifact_dir,
    write_manifest,
)
from edgekit.core.artifacts import sha256_file
from edgekit.core.errors import UsageError
from edgekit.train.data import TrainData

if TYPE_CHECKING:  # loop needs torch; this module does not
    from edgekit.train.loop import FitOptions

FLOAT_NAME = "float.onnx"


def onnx_logits(model: Path, data: TrainData) -> np.ndarray:
    """The first output of an ONNX model over every row, run by onnxruntime."""
    dataset = Dataset(Path(data.source), data.inputs, data.labels)
    outputs = run_outputs(model, dataset)
    return next(iter(outputs.values()))


def onnx_accuracy(model: Path, data: TrainData) -> float:
    """Top-1 accuracy (a fraction in [0, 1]) of an ONNX classifier on labelled `data`."""
    assert data.labels is not None
    return float((onnx_logits(model, data).argmax(1) == data.labels).mean())


def check_out_dir(out_dir: Path | None, force: bool) -> None:
    """Refuse a non-empty OUT_DIR before any training (the same rule `compress` applies)."""
    if out_dir is None:
        return
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not force:
        raise UsageError(f"-o {out_dir}: exists and is not empty; pass --force to replace it")


@dataclass(frozen=True)
class ArtifactPlan:
    """What a technique hands over: the trained ONNX, its float reference and what happened."""

    model: Path  # the artifact file (in a scratch directory)
    reference: Path  # the float model it is compared with (ONNX)
    recipe: list[dict[str, Any]]
    training: dict[str, Any]
    reference_logits: np.ndarray | None = None  # e.g. an ensemble's; else the reference's own
    reference_note: str | None = None


def training_section(
    technique: str,
    settings: dict[str, Any],
    options: FitOptions,
    results: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest's `training` section, keys in this order: `technique`, the technique's own
    `settings`, `learning_rate`, `batch_size`, `seed` (from `options`), its `results` (accuracy,
    history, ...), then `extra` (added by the caller, e.g. a float pre-training history)."""
    training = {
        "technique": technique,
        **settings,
        "learning_rate": options.learning_rate,
        "batch_size": options.batch_size,
        "seed": options.seed,
        **results,
    }
    training.update(extra or {})
    return training


def torch_version() -> str | None:
    """The installed torch's version string, or None without the `train` extra."""
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


def write_artifact(
    plan: ArtifactPlan,
    out_dir: Path,
    eval_data: TrainData,
    *,
    force: bool = False,
    target: str = "local",
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Measure fidelity on `eval_data` with onnxruntime and publish OUT_DIR whole or not at all."""
    with staged_artifact_dir(out_dir, force) as staging:
        artifact = staging / f"{ARTIFACT_STEM}.onnx"
        shutil.copyfile(plan.model, artifact)
        reference_file = staging / FLOAT_NAME
        shutil.copyfile(plan.reference, reference_file)
        if emit is not None:
            emit({"event": "fidelity", "message": f"comparing on {eval_data.rows} rows"})
        reference = (
            plan.reference_logits
            if plan.reference_logits is not None
            else onnx_logits(plan.reference, eval_data)
        )
        fidelity = {
            "data": eval_data.source,
            "output": "logits",
            **compare_outputs(reference, onnx_logits(artifact, eval_data), eval_data.labels),
        }
        if plan.reference_note:
            fidelity["reference"] = plan.reference_note
        manifest = artifact_manifest(
            artifact,
            {
                "path": str(out_dir / FLOAT_NAME),
                "sha256": sha256_file(reference_file),
                "size_bytes": reference_file.stat().st_size,
            },
            target=target,
            recipe=plan.recipe,
            fidelity=fidelity,
            training=plan.training,
            tools={"torch": torch_version()},
        )
        write_manifest(staging, manifest)
    manifest["path"] = str(out_dir)
    return manifest
