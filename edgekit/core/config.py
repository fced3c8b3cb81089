"""Loading and validating TOML files (profiles now; inventories and plans later).

A schema is a mapping of key -> `Field` or nested `Section`. Validation names the
file, the key and what was expected, and suggests the closest known key on a typo.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from edgekit.core.errors import ConfigError


@dataclass(frozen=True)
class Field:
    """One scalar or list value: its accepted types and a human description of what is expected."""

    types: tuple[type, ...]
    expected: str
    required: bool = False
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], bool] | None = None
    item_types: tuple[type, ...] | None = None  # for lists


@dataclass(frozen=True)
class Section:
    """A TOML table with known keys, or (``free_values``) arbitrary keys of one Field kind."""

    fields: Mapping[str, Field | Section] = field(default_factory=dict)
    required: bool = False
    free_values: Field | None = None


def number(unit: str, *, required: bool = False, minimum: float | None = 0.0) -> Field:
    """A float or int measured in `unit` (the unit also lives in the key name)."""

    def in_range(value: Any) -> bool:
        return math.isfinite(value) and (minimum is None or value >= minimum)

    bound = f" >= {minimum:g}" if minimum is not None else ""
    return Field((int, float), f"a number{bound} ({unit})", required=required, check=in_range)


def integer(what: str, *, required: bool = False, minimum: int = 0) -> Field:
    return Field(
        (int,),
        f"an integer >= {minimum} ({what})",
        required=required,
        check=lambda v: v >= minimum,
    )


def text(what: str, *, required: bool = False, choices: tuple[str, ...] | None = None) -> Field:
    expected = f"one of {', '.join(repr(c) for c in choices)}" if choices else f"a string ({what})"
    return Field((str,), expected, required=required, choices=choices)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file and the line."""
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


def _is_instance(value: Any, types: tuple[type, ...]) -> bool:
    # TOML booleans are Python bools, which are ints: never accept them as numbers.
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def _unit_hint(value: Any, spec: Field) -> str:
    if isinstance(value, str) and (int in spec.types or float in spec.types):
        return "; write the bare number, the unit is in the key name"
    return ""


def _check_field(value: Any, spec: Field, where: str, path: Path) -> None:
    def fail(got: str) -> None:
        raise ConfigError(
            f"{path}: {where}: expected {spec.expected}, got {got}",
            path=str(path),
            key=where,
            expected=spec.expected,
        )

    if not _is_instance(value, spec.types):
        fail(_type_name(value) + _unit_hint(value, spec))
    if spec.item_types is not None:
        for item in value:
            if not _is_instance(item, spec.item_types):
                fail(f"a list holding {_type_name(item)}")
    if spec.choices is not None and value not in spec.choices:
        fail(repr(value))
    if spec.check is not None and not spec.check(value):
        fail(repr(value))


def _unknown_key(key: str, known: list[str], where: str, path: Path) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{path}: {where}: unknown key {key!r}{hint}; expected one of {', '.join(known)}",
        path=str(path),
        key=key,
        known=known,
    )


def validate(data: Mapping[str, Any], schema: Section, path: Path, prefix: str = "") -> None:
    """Raise ConfigError for the first unknown key, wrong type/unit or missing required key."""
    where_table = f"[{prefix}]" if prefix else "top level"
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        spec = schema.fields.get(key, schema.free_values)
        if spec is None:
            raise _unknown_key(key, list(schema.fields), where_table, path)
        if isinstance(spec, Section):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{path}: {where}: expected a table [{where}], got {_type_name(value)}",
                    path=str(path),
                    key=where,
                )
            validate(value, spec, path, where)
        else:
            _check_field(value, spec, where, path)
    for key, spec in schema.fields.items():
        if spec.required and key not in data:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"{path}: missing required key {where!r}", path=str(path), key=where)
