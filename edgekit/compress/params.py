"""A recipe's parameters: declared kind, default, bounds; text -> typed value and back.

Text values come from the command line (`prune-channels:0.5,reconstruct=no`); typed values come
from code building a recipe (`optimize`). Both are checked by the same bounds and choices, and a
bad value is a one-line `UsageError` naming the recipe, the key and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekit.core.errors import UsageError

_YES = ("yes", "true", "1", "on")
_NO = ("no", "false", "0", "off")


@dataclass(frozen=True)
class Param:
    """One parameter of a recipe: `kind` is float, int, bool or str."""

    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, recipe: str, key: str, raw: str) -> Any:
        """The typed value of the text `raw` (booleans: yes/no, true/false, 1/0, on/off).
        Raises UsageError when it is not of the kind, out of bounds or not a choice."""
        where = f"recipe {recipe!r}: {key}={raw!r}"
        if self.kind is bool:
            lowered = raw.lower()
            if lowered in _YES:
                return True
            if lowered in _NO:
                return False
            raise UsageError(f"{where}: expected yes or no")
        if self.kind in (int, float):
            try:
                value = self.kind(raw)
            except ValueError:
                raise UsageError(f"{where}: expected a number ({self.help})") from None
            return self._bounded(where, value)
        return self._chosen(where, raw)

    def check(self, recipe: str, key: str, value: Any) -> Any:
        """A typed value given by code, checked like a parsed one; ints are accepted for floats."""
        where = f"recipe {recipe!r}: {key}={show(value)!r}"
        if self.kind is bool:
            if not isinstance(value, bool):
                raise UsageError(f"{where}: expected yes or no")
            return value
        if self.kind in (int, float):
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not numeric or (self.kind is int and not isinstance(value, int)):
                raise UsageError(f"{where}: expected a number ({self.help})")
            return self._bounded(where, self.kind(value))
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected text")
        return self._chosen(where, value)

    def _bounded(self, where: str, value: float) -> float:
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise UsageError(f"{where}: expected {self.minimum:g} <= value <= {self.maximum:g} ({self.help})")
        return value

    def _chosen(self, where: str, value: str) -> str:
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"{where}: expected one of {', '.join(self.choices)}")
        return value


def show(value: Any) -> str:
    """The text form of a typed value, which `Param.parse` reads back: yes/no, `%g` floats."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)
