"""Reading TOML files and validating them with typed pydantic models, errors as one line.

Every edgekit TOML file (device profiles, inventories, fleet plans, training configs) is
described by a `ConfigModel`: the model validates the file and generates its JSON Schema
(`json_schema`), so the two cannot disagree. Each field's `description` is the phrase
"what was expected" of error messages, units included, e.g. "a number >= 0 (milliseconds)".
`validate_model` turns pydantic's ValidationError into a one-line `ConfigError` naming the
file, the key path, what was expected and what was found, with the closest known key on a typo.
"""

from __future__ import annotations

import difflib
import sys
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import ErrorDetails, core_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from edgekit.core.errors import ConfigError

__all__ = [
    "ConfigModel",
    "integer",
    "json_schema",
    "number",
    "one_of",
    "read_toml",
    "text",
    "tomllib",
    "validate_model",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
Model = TypeVar("Model", bound="ConfigModel")


class ConfigModel(BaseModel):
    """A TOML table: unknown keys are errors, no type coercion (TOML's `true` is not 1, "3" not 3)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# Field helpers: pass default=... for a required key; `extra` goes to pydantic.Field (e.g. title).


def number(
    unit: str, *, minimum: float | None = 0.0, above: bool = False, default: Any = None, **extra: Any
) -> Any:
    """A finite float or int in `unit` (the unit is also in the key name); >= `minimum` (> when `above`)."""
    if minimum is None:
        return Field(default=default, allow_inf_nan=False, description=f"a number ({unit})", **extra)
    bound = {"gt" if above else "ge": minimum}
    sign = ">" if above else ">="
    description = f"a number {sign} {minimum:g} ({unit})"
    return Field(default=default, allow_inf_nan=False, description=description, **bound, **extra)


def integer(
    what: str, *, minimum: int = 0, maximum: int | None = None, default: Any = None, **extra: Any
) -> Any:
    """An integer >= `minimum` (and <= `maximum` when given); `what` says what it counts."""
    if maximum is None:
        return Field(default=default, ge=minimum, description=f"an integer >= {minimum} ({what})", **extra)
    description = f"an integer {minimum}-{maximum} ({what})"
    return Field(default=default, ge=minimum, le=maximum, description=description, **extra)


def text(what: str, *, default: Any = None, **extra: Any) -> Any:
    """A string; `what` says what it names."""
    return Field(default=default, description=f"a string ({what})", **extra)


def one_of(choices: Iterable[Any], *, default: Any = None, **extra: Any) -> Any:
    """A value from `choices` (annotate the field with the matching Literal)."""
    return Field(default=default, description="one of " + ", ".join(repr(c) for c in choices), **extra)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file and the line.

    Raises ConfigError (one line) for a missing, unreadable, non-UTF-8 or invalid file.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", path=str(path)) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", path=str(path)) from None


class _TomlJsonSchema(GenerateJsonSchema):
    """TOML has no null: an optional key is simply absent, so `None` never appears in the schema."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> Any:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> Any:
        if "default" in schema and schema["default"] is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


def json_schema(model: type[ConfigModel], *, title: str, description: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a TOML file described by `model`, as a dict."""
    schema = model.model_json_schema(schema_generator=_TomlJsonSchema)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema, "title": title, "description": description}


def validate_model(model: type[Model], data: Any, path: Path, *, one_based: Iterable[str] = ()) -> Model:
    """`data` (a parsed TOML document) as a `model`, or a one-line ConfigError.

    The error names `path`, the key path (`facts.cores`, `device[0].port`; arrays of tables
    listed in `one_based` count from 1), what was expected and what was found.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _config_error(model, exc, path, frozenset(one_based)) from None


# --- ValidationError -> ConfigError ---------------------------------------------------------------


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X (TOML has no null: None only stands for an absent key)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _keys(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The TOML keys of a table (aliases where set) -> their fields."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


class _Place:
    """Where an error's `loc` points: the key path text, the field, the table model around it."""

    def __init__(self, root: type[BaseModel], loc: tuple[int | str, ...], one_based: frozenset[str]) -> None:
        self.where = ""
        self.field: FieldInfo | None = None
        self.table: type[BaseModel] | None = root  # the model whose keys the next loc item names
        self.item_of_list = False  # the loc ends inside a list of scalars
        current: Any = root
        last_key = ""
        for part in loc:
            if isinstance(part, int):
                if _model_of(current) is not None:  # an array of tables: name the table
                    self.where += f"[{part + (1 if last_key in one_based else 0)}]"
                else:
                    self.item_of_list = True
                self.table = _model_of(current)
                continue
            model = _model_of(current)
            if model is not None and part in _keys(model):
                self.field = _keys(model)[part]
                current = _item_type(self.field.annotation)
                self.table = _model_of(current)
            else:  # a key of a free table (dict), or an unknown key
                current = _item_type(current) if model is None else None
                self.table = None
            self.where += f".{part}" if self.where else str(part)
            last_key = str(part)

    @property
    def expected(self) -> str:
        return self.field.description if self.field is not None and self.field.description else "a value"


def _item_type(annotation: Any) -> Any:
    """list[X] / tuple[X, ...] / dict[str, X] -> X; anything else unchanged."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return annotation


def _priority(error: ErrorDetails) -> int:
    """Report a typo before what it caused (a missing key), and a bad value before a missing key."""
    return {"extra_forbidden": 0, "missing": 2}.get(error["type"], 1)


def _config_error(
    model: type[BaseModel], exc: ValidationError, path: Path, one_based: frozenset[str]
) -> ConfigError:
    error = min(exc.errors(), key=_priority)
    loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        table = _Place(model, loc[:-1], one_based)
        known = list(_keys(table.table)) if table.table is not None else []
        key = str(loc[-1])
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where_table = f"[{table.where}]" if table.where else "top level"
        return ConfigError(
            f"{path}: {where_table}: unknown key {key!r}{hint}; expected one of {', '.join(known)}",
            path=str(path),
            key=key,
            known=known,
        )
    place = _Place(model, loc, one_based)
    if kind == "missing":
        return ConfigError(f"{path}: missing required key {place.where!r}", path=str(path), key=place.where)
    if kind == "value_error":  # a model's own check (a validator) with its own message
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        prefix = f"{path}: {place.where}: " if place.where else f"{path}: "
        return ConfigError(prefix + message, path=str(path), key=place.where)
    expected = place.expected
    if kind in ("model_type", "model_attributes_type", "dict_type") and not place.item_of_list:
        expected = f"a table [{place.where}]"
    if place.item_of_list:
        got = f"a list holding {_type_name(value)}"
    elif kind.endswith("_type"):
        got = _type_name(value)
        if isinstance(value, str) and kind in ("int_type", "float_type"):
            got += "; write the bare number, the unit is in the key name"
    else:
        got = repr(value)
    return ConfigError(
        f"{path}: {place.where}: expected {expected}, got {got}",
        path=str(path),
        key=place.where,
        expected=expected,
    )
