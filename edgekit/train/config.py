"""The training config (`edgekit train ... --config train.toml`): schema, validation, and the
import of model factories (`package.module:factory`). No torch needed to validate."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from edgekit.compress.images import ImagePreprocess
from edgekit.core.config import (
    ConfigModel,
    integer,
    json_schema,
    number,
    one_of,
    read_toml,
    text,
    validate_model,
)
from edgekit.core.errors import ConfigError
from edgekit.core.inputs import read_npz

TECHNIQUES = ("qat", "prune", "distill")
Augment = Literal["none", "shift"]
Criterion = Literal["l1", "l2"]
Weighting = Literal["mean", "confidence"]
_KWARGS = "a table of keyword arguments for the factory"


class ModelTable(ConfigModel):
    """[model]: the student (the model trained), made by a factory."""

    factory: str = text("package.module:factory", default=...)
    kwargs: dict[str, Any] = Field(default_factory=dict, description=_KWARGS)
    weights: str | None = text("a torch state_dict file (.pt)")
    inputs: dict[str, list[int]] | None = Field(
        default=None, description="a table of input name = a list of dimensions without the batch"
    )


class TeacherTable(ConfigModel):
    """One [[distill.teachers]] table: an ONNX teacher or a factory one (exactly one of the two)."""

    model_config = ConfigModel.model_config | {
        "json_schema_extra": {"oneOf": [{"required": ["onnx"]}, {"required": ["factory"]}]}
    }

    onnx: str | None = text("an ONNX teacher")
    factory: str | None = text("package.module:factory")
    kwargs: dict[str, Any] = Field(default_factory=dict, description=_KWARGS)
    weights: str | None = text("a torch state_dict file (.pt)")
    epochs: int | None = integer("epochs to train this teacher here on the labels when it has no weights")
    seed: int | None = integer("seed of this teacher's initialisation and training")

    @model_validator(mode="after")
    def _one_source(self) -> TeacherTable:
        if (self.onnx is None) == (self.factory is None):
            raise ValueError("give exactly one of 'onnx' or 'factory'")
        return self


class DataTable(ConfigModel):
    """[data]: training and held-out data, .npz files or image folders (DIR/<class>/*.png)."""

    train: str = text("training .npz or image folder", default=...)
    eval: str = text("held-out .npz or image folder with labels", default=...)
    image_preprocess: ImagePreprocess = one_of(get_args(ImagePreprocess), default="unit")


class TrainTable(ConfigModel):
    """[train]: settings shared by every technique."""

    epochs: int = integer("epochs (per pruning step for prune)", default=3)
    learning_rate: float = number("step size", minimum=None, default=1e-3)
    batch_size: int = integer("rows per step", minimum=1, default=64)
    weight_decay: float = number("L2 penalty", default=0.0)
    augment: Augment = one_of(get_args(Augment), default="none")
    float_epochs: int = integer("train the float model first (factories without weights)", default=0)
    float_learning_rate: float = number("step size of the float training", minimum=None, default=3e-3)


class _Technique(ConfigModel):
    """A technique's own [train] values; absent = [train]'s."""

    epochs: int | None = integer("epochs of this technique")
    learning_rate: float | None = number("step size of this technique", minimum=None)


class QatTable(_Technique):
    """[qat]: quantization-aware training."""

    bits: int | None = integer("weight bits", minimum=2, maximum=8)
    per_channel: bool | None = Field(default=None, description="true/false")


class PruneTable(_Technique):
    """[prune]: structured channel pruning with fine-tuning."""

    target_ratio: float | None = number("share of channels removed", minimum=None)
    steps: int | None = integer("prune / fine-tune rounds", minimum=1)
    criterion: Criterion | None = one_of(get_args(Criterion))
    multiple: int | None = integer("kept channels rounded up to this multiple", minimum=1)


class DistillTable(_Technique):
    """[distill]: knowledge distillation into [model] from one or more teachers."""

    temperature: float | None = number("softmax temperature", minimum=None)
    alpha: float | None = number("weight of the soft targets, 0..1")
    weighting: Weighting | None = one_of(get_args(Weighting))
    teachers: list[TeacherTable] = Field(
        default_factory=list, description="an array of [[distill.teachers]] tables"
    )


class TrainFile(ConfigModel):
    """A training config file (`edgekit train TECHNIQUE --config FILE`); paths relative to it."""

    model: ModelTable
    data: DataTable
    train: TrainTable = Field(default_factory=TrainTable)
    qat: QatTable = Field(default_factory=QatTable)
    prune: PruneTable = Field(default_factory=PruneTable)
    distill: DistillTable = Field(default_factory=DistillTable)


def train_config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a training config TOML file (docs/schema/train-config.schema.json)."""
    return json_schema(
        TrainFile,
        title="edgekit training config",
        description="Model factory, data and technique settings for `edgekit train qat|prune|distill`.",
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


def _model_spec(table: ModelTable | TeacherTable, base: Path) -> ModelSpec:
    assert table.factory is not None
    return ModelSpec(
        table.factory,
        dict(table.kwargs),
        _resolve(base, table.weights),
        (table.epochs or 0) if isinstance(table, TeacherTable) else 0,
        table.seed if isinstance(table, TeacherTable) else None,
    )


def _teachers(items: list[TeacherTable], base: Path, path: Path) -> list[ModelSpec | Path]:
    teachers: list[ModelSpec | Path] = []
    for number_, item in enumerate(items, 1):
        if item.onnx is not None:
            onnx_path = _resolve(base, item.onnx)
            assert onnx_path is not None
            if not onnx_path.is_file():
                where = f"distill.teachers[{number_}]"
                raise ConfigError(f"{path}: {where}.onnx: {onnx_path}: no such file", path=str(path))
            teachers.append(onnx_path)
        else:
            teachers.append(_model_spec(item, base))
    return teachers


def load_config(path: Path, technique: str) -> TrainConfig:
    """Parse and validate; paths are relative to the config file's directory.

    Raises ConfigError (one line naming the file and key) for anything TrainFile rejects, a
    missing data/weights/teacher file, or `distill` without teachers.
    """
    raw = read_toml(path)
    parsed = validate_model(TrainFile, raw, path, one_based=("teachers",))
    base = path.parent
    model = _model_spec(parsed.model, base)
    data, train = parsed.data, parsed.train
    teachers = _teachers(parsed.distill.teachers, base, path)
    if technique == "distill" and not teachers:
        raise ConfigError(f"{path}: distill needs at least one [[distill.teachers]] table", path=str(path))
    config = TrainConfig(
        path=path,
        raw=raw,
        model=model,
        inputs=None if parsed.model.inputs is None else {k: list(v) for k, v in parsed.model.inputs.items()},
        train_data=_resolve(base, data.train) or Path(),
        eval_data=_resolve(base, data.eval) or Path(),
        image_preprocess=data.image_preprocess,
        epochs=train.epochs,
        learning_rate=train.learning_rate,
        batch_size=train.batch_size,
        weight_decay=train.weight_decay,
        augment=None if train.augment == "none" else train.augment,
        float_epochs=train.float_epochs,
        float_learning_rate=train.float_learning_rate,
        qat=parsed.qat.model_dump(exclude_unset=True),
        prune=parsed.prune.model_dump(exclude_unset=True),
        distill=parsed.distill.model_dump(exclude_unset=True, exclude={"teachers"}),
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
    data = read_npz(config.train_data, "data.train")
    arrays = {name: list(a.shape[1:]) for name, a in data.items() if name != "labels"}
    if len(arrays) != 1:
        raise ConfigError(
            f"{config.path}: {config.train_data} has {len(arrays)} input arrays ({', '.join(arrays)}); "
            "name the model's inputs in [model.inputs]",
            path=str(config.path),
        )
    return arrays
