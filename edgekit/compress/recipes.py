"""Recipe text typed by a user -> typed steps, and steps built by code. `NAME[:ARG][,KEY=VALUE...]`,
chained with `+`.

Examples: `int8-static`, `int8-static:calib=entropy,per-channel=no`, `prune-channels:0.5`,
`lowrank:energy=0.95`, `prune-channels:0.5+int8-static`.
"""

from __future__ import annotations

import difflib
from typing import Any

from edgekit.compress.catalog import RECIPES
from edgekit.compress.recipe import Recipe, RecipeSpec, RecipeStep
from edgekit.core.errors import UsageError

__all__ = ["RECIPES", "Recipe", "RecipeStep", "parse_recipe", "parse_recipes", "parse_step", "spec", "step"]


def spec(name: str) -> RecipeSpec:
    """The spec called `name`. Raises UsageError naming the closest known recipe."""
    found = RECIPES.get(name)
    if found is None:
        close = difflib.get_close_matches(name, list(RECIPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown recipe {name!r}{hint}; recipes: {', '.join(RECIPES)}")
    return found


def parse_step(text: str) -> RecipeStep:
    """One step from its text, e.g. `prune-channels:0.4`. Raises UsageError (one line)."""
    name, _, params = text.strip().partition(":")
    return spec(name).parse(params)


def step(name: str, **params: Any) -> RecipeStep:
    """One step from typed values: `step("int8-static", calib="entropy", per_channel=False)`."""
    return spec(name).build(**params)


def parse_recipes(items: list[str]) -> list[RecipeStep]:
    """One or more `--recipe` values, each possibly a `+` chain, in order, as one chain."""
    steps = [parse_step(part) for item in items for part in item.split("+") if part.strip()]
    if not steps:
        raise UsageError(f"--recipe is required; recipes: {', '.join(RECIPES)}")
    return list(Recipe(tuple(steps)).steps)


def parse_recipe(text: str) -> Recipe:
    """One chain from its text (`prune-channels:0.5+int8-static`). Raises UsageError."""
    return Recipe(tuple(parse_recipes([text])))
