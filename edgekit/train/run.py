"""One training run from a validated config: build the model, load and check the data, train
(float first when asked), apply the technique and publish the artifact directory. Shared by
`edgekit train` and the `optimize` training candidates."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.core.errors import ConfigError, UsageError
from edgekit.core.profiles import DeviceProfile
from edgekit.train.artifact import check_out_dir
from edgekit.train.config import ModelSpec, TrainConfig, import_factory, infer_inputs, technique_settings
from edgekit.train.data import TrainData, check_against_model, load_train_data
from edgekit.train.extra import require_torch

torch = require_torch()
EventCallback = Callable[[dict[str, Any]], None]
RUN_FILE = "run.json"


def checkpoint_dir(out_dir: Path) -> Path:
    """Beside the output directory, which only appears when the run is complete."""
    return out_dir.with_name(f"{out_dir.name}.checkpoints")


def build_model(spec: ModelSpec, seed: int, where: str) -> Any:
    factory = import_factory(spec.factory, f"{where}.factory")
    torch.manual_seed(seed)
    try:
        model = factory(**spec.kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}.factory {spec.factory!r}: {exc}", factory=spec.factory) from None
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"{where}.factory {spec.factory!r} returned {type(model).__name__}, not a torch module"
        )
    if spec.weights is not None:
        try:
            model.load_state_dict(torch.load(spec.weights, weights_only=True))
        except (RuntimeError, OSError, KeyError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"{where}.weights {spec.weights}: does not fit the model: {first}") from None
    return model


def prepare_checkpoints(directory: Path, identity: dict[str, Any], resume: bool) -> Any:
    """The run's checkpoint folder; one left by a different config or seed is refused."""
    from edgekit.train.loop import Checkpoints

    if directory.exists() and not resume:
        shutil.rmtree(directory)
    marker = directory / RUN_FILE
    if marker.is_file():
        previous = json.loads(marker.read_text())
        if previous != identity:
            raise UsageError(
                f"{directory}: checkpoints of another run (config or seed differ); pass --fresh to start over"
            )
    else:
        directory.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(identity, indent=2) + "\n")
    return Checkpoints(directory)


def run_training(
    config: TrainConfig,
    technique: str,
    out_dir: Path,
    *,
    seed: int = 0,
    resume: bool = True,
    force: bool = False,
    profile: DeviceProfile | None = None,
    emit: EventCallback | None = None,
    training_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate everything, train, write OUT_DIR; checkpoints live beside it until success.
    `training_extra` is added to the manifest's `training` section."""
    from edgekit.train.loop import FitOptions, accuracy, fit

    emit = emit or (lambda event: None)
    check_out_dir(out_dir, force)
    torch.use_deterministic_algorithms(True)
    inputs = infer_inputs(config)
    names = list(inputs)
    train = load_train_data(config.train_data, inputs, "data.train", image_preprocess=config.image_preprocess)
    evaluation = load_train_data(
        config.eval_data, inputs, "data.eval", image_preprocess=config.image_preprocess
    )
    model = build_model(config.model, seed, "model")
    check_against_model(model, train, names, "data.train")
    check_against_model(model, evaluation, names, "data.eval")
    identity = {
        "technique": technique,
        "seed": seed,
        "config_sha256": hashlib.sha256(config.path.read_bytes()).hexdigest(),
    }
    checkpoints = prepare_checkpoints(checkpoint_dir(out_dir), identity, resume)
    float_history: list[dict[str, Any]] = []
    if config.float_epochs:
        options = FitOptions(
            config.float_epochs,
            config.float_learning_rate,
            config.batch_size,
            config.weight_decay,
            seed,
            config.augment,
        )
        model, float_history = fit(
            model,
            "float",
            train,
            names,
            options,
            evaluate=lambda m: accuracy(m, evaluation, names),
            checkpoints=checkpoints,
            emit=emit,
        )
    epochs, learning_rate = technique_settings(config, technique)
    common = {
        "input_names": names,
        "learning_rate": learning_rate,
        "batch_size": config.batch_size,
        "seed": seed,
        "augment": config.augment,
        "out_dir": out_dir,
        "force": force,
        "checkpoints": checkpoints,
        "emit": emit,
        "training_extra": {
            **({"float_history": float_history} if float_history else {}),
            **(training_extra or {}),
        },
    }
    manifest = _technique(technique, config, epochs, model, train, evaluation, common, profile, seed)
    shutil.rmtree(checkpoints.directory, ignore_errors=True)
    return manifest


def _technique(
    technique: str,
    config: TrainConfig,
    epochs: int,
    model: Any,
    train: TrainData,
    evaluation: TrainData,
    common: dict[str, Any],
    profile: DeviceProfile | None,
    seed: int,
) -> dict[str, Any]:
    if technique == "qat":
        from edgekit.train.qat import qat

        result = qat(
            model,
            train,
            evaluation,
            train.arrays(common["input_names"]),
            epochs,
            int(config.qat.get("bits", 8)),
            bool(config.qat.get("per_channel", True)),
            profile=profile,
            **common,
        )
        return dict(result.manifest or {})
    if technique == "prune":
        from edgekit.train.prune import prune_finetune

        result = prune_finetune(
            model,
            train,
            evaluation,
            float(config.prune.get("target_ratio", 0.5)),
            int(config.prune.get("steps", 2)),
            str(config.prune.get("criterion", "l1")),
            epochs_per_step=epochs,
            multiple=int(config.prune.get("multiple", 8)),
            **common,
        )
        return dict(result.manifest or {})
    if technique == "distill":
        from edgekit.train.distill import distill

        teachers = [
            _teacher(spec, index, train, evaluation, common, seed)
            for index, spec in enumerate(config.teachers, 1)
        ]
        result = distill(
            teachers,
            model,
            train,
            evaluation,
            float(config.distill.get("temperature", 4.0)),
            float(config.distill.get("alpha", 0.7)),
            str(config.distill.get("weighting", "mean")),
            epochs=epochs,
            **common,
        )
        return dict(result.manifest or {})
    raise UsageError(f"unknown technique {technique!r}")


def _teacher(
    spec: ModelSpec | Path,
    index: int,
    train: TrainData,
    evaluation: TrainData,
    common: dict[str, Any],
    seed: int,
) -> Any:
    """An ONNX path as is; a torch teacher built, loaded, or trained here on the labels."""
    from edgekit.train.loop import FitOptions, accuracy, fit

    if isinstance(spec, Path):
        return spec
    teacher_seed = spec.seed if spec.seed is not None else seed + index
    model = build_model(spec, teacher_seed, f"distill.teachers[{index}]")
    check_against_model(model, train, common["input_names"], "data.train")
    if spec.weights is None and spec.epochs:
        options = FitOptions(
            spec.epochs, 3e-3, common["batch_size"], seed=teacher_seed, augment=common["augment"]
        )
        model, _ = fit(
            model,
            f"teacher-{index}",
            train,
            common["input_names"],
            options,
            evaluate=lambda m: accuracy(m, evaluation, common["input_names"]),
            checkpoints=common["checkpoints"],
            emit=common["emit"],
        )
    return model.eval()
