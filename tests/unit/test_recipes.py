from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgekit.compress.lowrank import choose_rank
from edgekit.compress.prune import _keep_count
from edgekit.compress.recipes import RECIPES, Recipe, parse_recipe, parse_recipes, parse_step, step
from edgekit.core.errors import UsageError


def test_defaults_positional_and_keywords() -> None:
    assert parse_step("prune-channels:0.4").params == {"ratio": 0.4, "reconstruct": True, "multiple": 8}
    step = parse_step("int8-static:calib=entropy,per-channel=no,scheme=s8s8")
    assert step.params["calib"] == "entropy" and step.params["per-channel"] is False
    assert step.params["scheme"] == "s8s8" and step.params["reduce-range"] == "target"
    assert parse_step("lowrank").params == {"energy": 0.9, "ratio": 0.0}
    assert parse_step("lowrank:0.25").params["ratio"] == 0.25
    assert [s.name for s in parse_recipes(["prune-channels:0.5+int8-static"])] == [
        "prune-channels",
        "int8-static",
    ]
    assert [s.name for s in parse_recipes(["lowrank", "fp16"])] == ["lowrank", "fp16"]


@pytest.mark.parametrize(
    ("recipes", "message"),
    [
        (["int8-statc"], "unknown recipe 'int8-statc' (did you mean 'int8-static'?)"),
        (["prune-channels:1.5"], "expected 0 <= value <= 0.95"),
        (["prune-channels:half"], "expected a number"),
        (["int8-static:calib=kl"], "expected one of minmax, entropy, percentile"),
        (["int8-static:per-channel=maybe"], "expected yes or no"),
        (["int8-static:bits=4"], "unknown parameter 'bits'"),
        (["fp16:0.5"], "needs a KEY=VALUE form"),
        (["int8-static+fp16"], "one quantization step"),
        (["int8-static+prune-channels:0.5"], "put int8-static last"),
        ([], "--recipe is required"),
    ],
)
def test_bad_recipes(recipes: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_recipes(recipes)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "int8-static",
        "int8-static:calib=entropy,per-channel=no",
        "prune-channels:0.4",
        "prune-channels:0.25,reconstruct=no",
        "lowrank",
        "lowrank:energy=0.95",
        "lowrank:0.25",
        "prune-channels:0.5+int8-static:scheme=s8s8",
        "prune-magnitude:0.3+fp16:keep-io=no",
    ],
)
def test_text_form_reads_back_as_itself(text: str) -> None:
    recipe = parse_recipe(text)
    assert recipe.text() == text and parse_recipe(recipe.text()) == recipe


def test_text_form_is_canonical() -> None:
    assert parse_step("int8-static:per_channel=false,calib=entropy").text() == (
        "int8-static:calib=entropy,per-channel=no"
    )
    pruned = parse_step("prune-channels:reconstruct=no,ratio=0.40")
    assert pruned.text() == "prune-channels:0.4,reconstruct=no"


def test_steps_built_from_typed_values_match_parsed_ones() -> None:
    built = step("int8-static", calib="entropy", per_channel=False)
    assert built == parse_step("int8-static:calib=entropy,per-channel=no")
    assert built.text() == "int8-static:calib=entropy,per-channel=no"
    assert step("lowrank").params == {"energy": 0.9, "ratio": 0.0}
    chain = Recipe((step("prune-channels", ratio=0.4), step("fp16")))
    assert chain.text() == "prune-channels:0.4+fp16" and chain == parse_recipe("prune-channels:0.4+fp16")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: step("prune-channels", ratio=1.5), "expected 0 <= value <= 0.95"),
        (lambda: step("prune-channels", ratio="half"), "expected a number"),
        (lambda: step("prune-channels", multiple=8.5), "expected a number"),
        (lambda: step("int8-static", calib="kl"), "expected one of minmax, entropy, percentile"),
        (lambda: step("int8-static", per_channel="no"), "expected yes or no"),
        (lambda: step("int8-static", bits=4), "unknown parameter 'bits'"),
        (lambda: step("int9"), "unknown recipe 'int9'"),
        (lambda: Recipe((step("fp16"), step("prune-channels"))), "put fp16 last"),
        (lambda: Recipe(()), "at least one step"),
    ],
)
def test_bad_typed_steps(build: Any, message: str) -> None:
    with pytest.raises(UsageError) as info:
        build()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_each_spec_says_what_it_needs() -> None:
    needs = {name: spec.needs_calibration(step(name).params) for name, spec in RECIPES.items()}
    needed = {name for name, needs_rows in needs.items() if needs_rows}
    assert needed == {"int8-static", "tflite-int8", "prune-channels"}
    assert not RECIPES["prune-channels"].needs_calibration(step("prune-channels", reconstruct=False).params)
    assert all(spec.no_calibration_message for name, spec in RECIPES.items() if needs[name])
    fallbacks = {name: spec.float_fallback for name, spec in RECIPES.items() if spec.float_fallback}
    assert set(fallbacks) == {"int8-static", "fp16"}
    # fp16 keeps nodes float32 by itself when the artifact falls below the quality floor
    assert {name for name, fallback in fallbacks.items() if fallback.repair_floor} == {"fp16"}
    assert RECIPES["tflite-int8"].suffix == ".tflite"
    record = RECIPES["fp16"].record(step("fp16"), {"keep_io_types": True})
    assert record == {"name": "fp16", "params": {"keep-io": True}, "report": {"keep_io_types": True}}


def test_rank_choice() -> None:
    singular = np.array([10.0, 5.0, 1.0, 0.1])
    # squared energies 100, 25, 1, 0.01 of 126.01: rank 1 keeps 79.4%
    assert choose_rank(singular, energy=0.79, ratio=0) == 1
    assert choose_rank(singular, energy=0.8, ratio=0) == 2
    assert choose_rank(singular, energy=0.99, ratio=0) == 2
    assert choose_rank(singular, energy=0.999, ratio=0) == 3
    assert choose_rank(singular, energy=0, ratio=0.5) == 2


def test_keep_count_rounds_to_kernel_blocks() -> None:
    assert _keep_count(64, 0.3, 8) == 48  # 44.8 -> 45 -> 48
    assert _keep_count(64, 0.5, 8) == 32
    assert _keep_count(32, 0.4, 8) == 24  # 19.2 -> 19 -> 24
    assert _keep_count(10, 0.5, 8) == 5  # too few channels to round
    assert _keep_count(64, 0.3, 1) == 45
