from __future__ import annotations

import numpy as np
import pytest

from edgekit.compress.lowrank import choose_rank
from edgekit.compress.prune import _keep_count
from edgekit.compress.recipes import parse_recipes, parse_step
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
