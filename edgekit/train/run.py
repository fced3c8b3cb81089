"""One training run from a validated config: build the model, load and check the data, train
(float first when asked), apply the technique and publish the artifact directory. Shared by
`edgekit train` and the `optimize` training candidates."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
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
    """`spec.factory(**spec.kwargs)` under `torch.manual_seed(seed)`, with `spec.weights` (a
    state_dict file) loaded; ConfigError naming `where` when it fails or is not a torch module."""
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


@dataclass(frozen=True)
class _Setup:
    """A run's validated inputs: the model's input names, the loaded data and the built model."""

    names: list[str]
    train: TrainData
    evaluation: TrainData
    model: Any


def _setup(config: TrainConfig, seed: int) -> _Setup:
    """Load `data.train` and `data.eval` for the config's inputs, build `[model]` seeded with
    `seed`, and check both data sets against it (ConfigError / InputSpecError)."""
    inputs = infer_inputs(config)
    names = list(inputs)
    train = load_train_data(config.train_data, inputs, "data.train", image_preprocess=config.image_preprocess)
    evaluation = load_train_data(
        config.eval_data, inputs, "data.eval", image_preprocess=config.image_preprocess
    )
    model = build_model(config.model, seed, "model")
    check_against_model(model, train, names, "data.train")
    check_against_model(model, evaluation, names, "data.eval")
    return _Setup(names, train, evaluation, model)


def _run_identity(config: TrainConfig, technique: str, seed: int) -> dict[str, Any]:
    """What a checkpoint folder belongs to: the technique, the seed and the config file's SHA-256."""
    return {
        "technique": technique,
        "seed": seed,
        "config_sha256": hashlib.sha256(config.path.read_bytes()).hexdigest(),
    }


def _train_float(
    config: TrainConfig, setup: _Setup, seed: int, checkpoints: Any, emit: EventCallback
) -> tuple[Any, list[dict[str, Any]]]:
    """The `float` phase (`train.float_epochs`, none when 0): the model and its per-epoch history."""
    from edgekit.train.loop import FitOptions, fit_evaluated

    if not config.float_epochs:
        return setup.model, []
    options = FitOptions(
        config.float_epochs,
        config.float_learning_rate,
        config.batch_size,
        config.weight_decay,
        seed,
        config.augment,
    )
    return fit_evaluated(
        setup.model,
        "float",
        setup.train,
        setup.evaluation,
        setup.names,
        options,
        checkpoints=checkpoints,
        emit=emit,
    )


@dataclass(frozen=True)
class _Technique:
    """What a technique's runner gets: the config, its epochs, the (float-trained) model, the data,
    the keyword arguments every technique takes (`common`), the target profile and the seed."""

    config: TrainConfig
    epochs: int
    model: Any
    train: TrainData
    evaluation: TrainData
    common: dict[str, Any]
    profile: DeviceProfile | None
    seed: int


Setting = tuple[str, Callable[[Any], Any], Any]  # (key in the config section, conversion, default)
QAT_SETTINGS: tuple[Setting, ...] = (("bits", int, 8), ("per_channel", bool, True))
PRUNE_SETTINGS: tuple[Setting, ...] = (
    ("target_ratio", float, 0.5),
    ("steps", int, 2),
    ("criterion", str, "l1"),
)
DISTILL_SETTINGS: tuple[Setting, ...] = (
    ("temperature", float, 4.0),
    ("alpha", float, 0.7),
    ("weighting", str, "mean"),
)


def _values(section: dict[str, Any], settings: tuple[Setting, ...]) -> list[Any]:
    """The technique's positional settings from its config section, converted, defaults filled in."""
    return [convert(section.get(key, default)) for key, convert, default in settings]


def _run_qat(job: _Technique) -> Any:
    """`edgekit.train.qat.qat` with the config's `[qat]` QAT_SETTINGS."""
    from edgekit.train.qat import qat

    examples = job.train.arrays(job.common["input_names"])
    bits, per_channel = _values(job.config.qat, QAT_SETTINGS)
    return qat(
        job.model,
        job.train,
        job.evaluation,
        examples,
        job.epochs,
        bits,
        per_channel,
        profile=job.profile,
        **job.common,
    )


def _run_prune(job: _Technique) -> Any:
    """`edgekit.train.prune.prune_finetune` with the config's `[prune]` PRUNE_SETTINGS and
    `multiple` (default 8)."""
    from edgekit.train.prune import prune_finetune

    multiple = int(job.config.prune.get("multiple", 8))
    return prune_finetune(
        job.model,
        job.train,
        job.evaluation,
        *_values(job.config.prune, PRUNE_SETTINGS),
        epochs_per_step=job.epochs,
        multiple=multiple,
        **job.common,
    )


def _run_distill(job: _Technique) -> Any:
    """`edgekit.train.distill.distill` from the config's teachers with its `[distill]`
    DISTILL_SETTINGS."""
    from edgekit.train.distill import distill

    teachers = [_teacher(spec, index, job) for index, spec in enumerate(job.config.teachers, 1)]
    return distill(
        teachers,
        job.model,
        job.train,
        job.evaluation,
        *_values(job.config.distill, DISTILL_SETTINGS),
        epochs=job.epochs,
        **job.common,
    )


_RUNNERS: dict[str, Callable[[_Technique], Any]] = {
    "qat": _run_qat,
    "prune": _run_prune,
    "distill": _run_distill,
}


def _teacher(spec: ModelSpec | Path, index: int, job: _Technique) -> Any:
    """An ONNX path as is; a torch teacher built, loaded, or trained here on the labels (phase
    `teacher-INDEX`, seed `spec.seed` or the run's seed + INDEX, learning rate 3e-3)."""
    from edgekit.train.loop import FitOptions, fit_evaluated

    if isinstance(spec, Path):
        return spec
    common = job.common
    teacher_seed = spec.seed if spec.seed is not None else job.seed + index
    model = build_model(spec, teacher_seed, f"distill.teachers[{index}]")
    check_against_model(model, job.train, common["input_names"], "data.train")
    if spec.weights is None and spec.epochs:
        options = FitOptions(
            spec.epochs, 3e-3, common["batch_size"], seed=teacher_seed, augment=common["augment"]
        )
        model, _ = fit_evaluated(
            model,
            f"teacher-{index}",
            job.train,
            job.evaluation,
            common["input_names"],
            options,
            checkpoints=common["checkpoints"],
            emit=common["emit"],
        )
    return model.eval()


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
    emit = emit or (lambda event: None)
    check_out_dir(out_dir, force)
    torch.use_deterministic_algorithms(True)
    setup = _setup(config, seed)
    checkpoints = prepare_checkpoints(checkpoint_dir(out_dir), _run_identity(config, technique, seed), resume)
    model, float_history = _train_float(config, setup, seed, checkpoints, emit)
    epochs, learning_rate = technique_settings(config, technique)
    common = {
        "input_names": setup.names,
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
    job = _Technique(config, epochs, model, setup.train, setup.evaluation, common, profile, seed)
    runner = _RUNNERS.get(technique)
    if runner is None:
        raise UsageError(f"unknown technique {technique!r}")
    manifest = dict(runner(job).manifest or {})
    shutil.rmtree(checkpoints.directory, ignore_errors=True)
    return manifest
