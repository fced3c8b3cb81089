"""The training config (`edgekit train ... --config train.toml`): schema, validation, and the
import of model factories (`package.module:factory`). No torch needed to validate."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.config import Field, Section, integer, number, read_toml, text, validate
from edgekit.core.errors import ConfigError, InputSpecError

TECHNIQUES = ("qat", "prune", "distill")
ANY = Field((str, int, float, bool, list, dict), "a value")
_MODEL = {
    "factory": text("package.module:factory", required=True),
    "kwargs": Section(free_values=ANY),
    "weights": text("a torch state_dict file (.pt)"),
    "inputs": Section(
        free_values=Field((list,), "a list of dimensions without the batch", item_types=(int,))
    ),
}
_TEACHER = Section(
    {
        "onnx": text("an ONNX teacher"),
        "factory": text("package.module:factory"),
        "kwargs": Section(free_values=ANY),
        "weights": text("a torch state_dict file (.pt)"),
        "epochs": integer("epochs to train this teacher here on the labels when it has no weights"),
        "seed": integer("seed of this teacher's initialisation and training"),
    }
)
_OVERRIDES = {  # a technique's own [train] values
    "epochs": integer("epochs of this technique", minimum=0),
    "learning_rate": number("step size of this technique", minimum=None),
}
SCHEMA = Section(
    {
        "model": Section(_MODEL, required=True),
        "data": Section(
            {
                "train": text("training .npz or image folder", required=True),
                "eval": text("held-out .npz or image folder with labels", required=True),
                "image_preprocess": text("", choices=("unit", "imagenet", "symmetric", "raw")),
            },
            required=True,
        ),
        "train": Section(
            {
                "epochs": integer("epochs (per pruning step for prune)", minimum=0),
                "learning_rate": number("step size", minimum=None),
                "batch_size": integer("rows per step", minimum=1),
                "weight_decay": number("L2 penalty"),
                "augment": text("", choices=("none", "shift")),
                "float_epochs": integer("train the float model first (factories without weights)"),
                "float_learning_rate": number("step size of the float training", minimum=None),
            }
        ),
        "qat": Section(
            {
                "bits": integer("weight bits 2..8", minimum=2),
                "per_channel": Field((bool,), "true/false"),
                **_OVERRIDES,
            }
        ),
        "prune": Section(
            {
                "target_ratio": number("share of channels removed", minimum=None),
                "steps": integer("prune / fine-tune rounds", minimum=1),
                "criterion": text("", choices=("l1", "l2")),
                "multiple": integer("kept channels rounded up to this multiple", minimum=1),
                **_OVERRIDES,
            }
        ),
        "distill": Section(
            {
                "temperature": number("softmax temperature", minimum=None),
                "alpha": number("weight of the soft targets, 0..1"),
                "weighting": text("", choices=("mean", "confidence")),
                "teachers": Field((list,), "a list of [[distill.teachers]] tables", item_types=(dict,)),
                **_OVERRIDES,
            }
        ),
    }
)


@dataclass(frozen=True)
class ModelSpec:
    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    epochs: int = 0  # teachers only: train here when there are no weights
    seed: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    path: Path
    raw: dict[str, Any]
    model: ModelSpec
    inputs: dict[str, list[int]] | None
    train_data: Path
    eval_data: Path
    image_preprocess: str = "unit"
    epochs: int = 3
    learning_rate: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    augment: str | None = None
    float_epochs: int = 0
    float_learning_rate: float = 3e-3
    qat: dict[str, Any] = field(default_factory=dict)
    prune: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, Any] = field(default_factory=dict)
    teachers: list[ModelSpec | Path] = field(default_factory=list)  # the student is [model]


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _model_spec(table: dict[str, Any], base: Path) -> ModelSpec:
    return ModelSpec(
        table["factory"],
        dict(table.get("kwargs", {})),
        _resolve(base, table.get("weights")),
        int(table.get("epochs", 0)),
        table.get("seed"),
    )


def _teachers(items: list[dict[str, Any]], base: Path, path: Path) -> list[ModelSpec | Path]:
    teachers: list[ModelSpec | Path] = []
    for number_, item in enumerate(items, 1):
        where = f"distill.teachers[{number_}]"
        validate(item, _TEACHER, path, where)
        if ("onnx" in item) == ("factory" in item):
            raise ConfigError(f"{path}: {where}: give exactly one of 'onnx' or 'factory'", path=str(path))
        if "onnx" in item:
            onnx_path = _resolve(base, item["onnx"])
            assert onnx_path is not None
            if not onnx_path.is_file():
                raise ConfigError(f"{path}: {where}.onnx: {onnx_path}: no such file", path=str(path))
            teachers.append(onnx_path)
        else:
            teachers.append(_model_spec(item, base))
    return teachers


def load_config(path: Path, technique: str) -> TrainConfig:
    """Parse and validate; paths are relative to the config file's directory."""
    raw = read_toml(path)
    validate(raw, SCHEMA, path)
    base = path.parent
    model = _model_spec(raw["model"], base)
    data, train = raw["data"], raw.get("train", {})
    distill = dict(raw.get("distill", {}))
    teachers = _teachers(distill.pop("teachers", []), base, path)
    if technique == "distill" and not teachers:
        raise ConfigError(f"{path}: distill needs at least one [[distill.teachers]] table", path=str(path))
    config = TrainConfig(
        path=path,
        raw=raw,
        model=model,
        inputs={k: list(v) for k, v in raw["model"]["inputs"].items()} if "inputs" in raw["model"] else None,
        train_data=_resolve(base, data["train"]) or Path(),
        eval_data=_resolve(base, data["eval"]) or Path(),
        image_preprocess=data.get("image_preprocess", "unit"),
        epochs=int(train.get("epochs", 3)),
        learning_rate=float(train.get("learning_rate", 1e-3)),
        batch_size=int(train.get("batch_size", 64)),
        weight_decay=float(train.get("weight_decay", 0.0)),
        augment=None if train.get("augment", "none") == "none" else train["augment"],
        float_epochs=int(train.get("float_epochs", 0)),
        float_learning_rate=float(train.get("float_learning_rate", 3e-3)),
        qat=dict(raw.get("qat", {})),
        prune=dict(raw.get("prune", {})),
        distill=distill,
        teachers=teachers,
    )
    for key, value in (("data.train", config.train_data), ("data.eval", config.eval_data)):
        if not value.exists():
            raise ConfigError(f"{path}: {key}: {value}: no such file or folder", path=str(path), key=key)
    if model.weights is not None and not model.weights.is_file():
        raise ConfigError(f"{path}: model.weights: {model.weights}: no such file", path=str(path))
    return config


def technique_settings(config: TrainConfig, technique: str) -> tuple[int, float]:
    """(epochs, learning rate) of a technique: its own section's values, else [train]'s."""
    section = {"qat": config.qat, "prune": config.prune, "distill": config.distill}[technique]
    return int(section.get("epochs", config.epochs)), float(
        section.get("learning_rate", config.learning_rate)
    )


def import_factory(spec: str, where: str = "model.factory") -> Any:
    """The callable named by `package.module:factory`; a path that does not import is exit 2."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{where} {spec!r}: expected 'package.module:factory'", factory=spec)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the user's module raises on import
        raise ConfigError(
            f"{where} {spec!r}: cannot import {module_name}: {exc.__class__.__name__}: {exc}", factory=spec
        ) from None
    factory = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConfigError(f"{where} {spec!r}: {module_name} has no {attribute!r}", factory=spec)
    if not callable(factory):
        raise ConfigError(f"{where} {spec!r}: {attribute} is not callable", factory=spec)
    return factory


def infer_inputs(config: TrainConfig) -> dict[str, list[int]]:
    """The model's inputs: [model.inputs] when given, else the one non-label array of the .npz."""
    if config.inputs is not None:
        return config.inputs
    if config.train_data.is_dir():
        raise ConfigError(
            f"{config.path}: an image folder needs [model.inputs], e.g. input = [3, 224, 224]",
            path=str(config.path),
        )
    try:
        with np.load(config.train_data, allow_pickle=False) as data:
            arrays = {name: list(data[name].shape[1:]) for name in data.files if name != "labels"}
    except (OSError, ValueError) as exc:
        raise InputSpecError(f"data.train {config.train_data}: not a readable .npz: {exc}") from None
    if len(arrays) != 1:
        raise ConfigError(
            f"{config.path}: {config.train_data} has {len(arrays)} input arrays ({', '.join(arrays)}); "
            "name the model's inputs in [model.inputs]",
            path=str(config.path),
        )
    return arrays
