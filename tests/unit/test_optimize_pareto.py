"""Pareto front and pick, and which candidates a search generates: pure functions."""

from __future__ import annotations

import pytest

from edgekit.compress import parse_recipe
from edgekit.optimize.candidates import (
    Candidate,
    FloatModel,
    ModelTraits,
    RuntimeSettings,
    first_phase,
    on_providers,
    provider_takes,
    prune_ratio,
    second_phase,
    slug,
)
from edgekit.optimize.pareto import Measured, Tolerances, dominates, pareto_front, pick

FLOAT = Measured("float", 1.00, 1000, 0.0, None)
INT8 = Measured("int8", 0.60, 260, 0.3, None)
FP16 = Measured("fp16", 1.02, 500, 0.0, None)  # as fast as float within noise, half the size
PRUNED = Measured("prune", 0.70, 600, 0.9, None)  # slower and bigger than int8, and less accurate


def test_dominance_needs_no_worse_everywhere_and_better_beyond_tolerance() -> None:
    assert dominates(INT8, PRUNED)
    assert not dominates(INT8, FLOAT)  # int8 loses 0.3 points: a real trade-off
    assert dominates(FP16, FLOAT)  # 2% slower is noise (5% tolerance), half the size is not
    assert not dominates(FP16, FLOAT, Tolerances(latency_rel=0.0))
    assert not dominates(FLOAT, FLOAT)


def test_energy_counts_only_when_both_have_it() -> None:
    a = Measured("a", 1.0, 100, 0.0, 5.0)
    b = Measured("b", 1.0, 100, 0.0, 9.0)
    assert dominates(a, b) and not dominates(b, a)
    assert not dominates(a, Measured("c", 1.0, 100, 0.0, None))


def test_front_and_pick() -> None:
    front = pareto_front([FLOAT, INT8, FP16, PRUNED])
    assert [m.name for m in front] == ["int8", "fp16"]
    assert pick([FLOAT, INT8, FP16, PRUNED], "latency").name == "int8"
    assert pick([FLOAT, INT8, FP16, PRUNED], "size").name == "int8"
    # Within budget wins over faster-but-over-budget.
    assert pick([INT8, FP16], "latency", {"int8": False, "fp16": True}).name == "fp16"
    assert pick([], "latency") is None
    with pytest.raises(ValueError):
        pick([INT8], "speed")


def test_a_tolerance_cycle_falls_back_to_the_strict_front() -> None:
    a = Measured("a", 1.00, 100, 0.00, None)
    b = Measured("b", 1.04, 90, 0.00, None)
    c = Measured("c", 1.08, 100, 0.00, None)
    front = pareto_front([a, b, c])
    assert front and {m.name for m in front} <= {"a", "b"}


def _names(candidates: list[Candidate]) -> list[str]:
    return [c.name for c in candidates]


def _candidates(*texts: str) -> list[Candidate]:
    return [Candidate(parse_recipe(text)) for text in texts]


def test_candidates_follow_the_model_and_the_board() -> None:
    cnn = ModelTraits(frozenset({"Conv", "Relu", "Gemm"}), tflite_runtime=False, int8_scheme="u8s8")
    names = _names(first_phase(cnn))
    assert names[:2] == ["int8-static", "fp16"]
    assert "int8-static:scheme=s8s8" in names and "prune-channels:0.5" in names
    assert "int8-static:per-channel=no" in names
    transformer = ModelTraits(frozenset({"MatMul", "Softmax"}), tflite_runtime=False, int8_scheme="s8s8")
    names = _names(first_phase(transformer))
    assert "int8-dynamic" in names and "lowrank:energy=0.95" in names and "int8-static:scheme=u8s8" in names
    assert not any(n.startswith("prune-channels") for n in names)
    tflite = ModelTraits(frozenset({"Conv"}), tflite_runtime=True, int8_scheme="s8s8")
    assert all(n.endswith("tflite-int8") for n in _names(first_phase(tflite)))
    assert "prune-channels:0.25+tflite-int8" in _names(first_phase(tflite))


def test_generated_candidates_are_typed_recipes_whose_text_reads_back_equal() -> None:
    cnn = ModelTraits(frozenset({"Conv", "MatMul"}), tflite_runtime=False, int8_scheme="u8s8")
    for candidate in first_phase(cnn):
        assert candidate.recipe is not None and candidate.runtime == RuntimeSettings()
        assert parse_recipe(candidate.name) == candidate.recipe
    entropy = next(c for c in first_phase(cnn) if c.name == "int8-static:calib=entropy")
    assert entropy.recipe is not None and entropy.recipe.steps[0].params["calib"] == "entropy"


def test_chains_take_the_strongest_surviving_pruning_and_the_fastest_quantizers() -> None:
    survivors = _candidates(
        "int8-static:per-channel=no",
        "prune-channels:0.4",
        "int8-static",
        "fp16",
        "prune-channels:0.25",
    )
    chains = second_phase(survivors, tried=set())
    assert _names(chains) == [
        "prune-channels:0.4+int8-static:per-channel=no",
        "prune-channels:0.4+fp16",
    ]
    chained = chains[0].recipe
    assert chained is not None and [s.name for s in chained.steps] == ["prune-channels", "int8-static"]
    assert second_phase(_candidates("int8-static"), tried=set()) == []
    assert _names(second_phase(survivors, tried={"prune-channels:0.4+fp16"})) == [
        "prune-channels:0.4+int8-static:per-channel=no"
    ]
    single, chain = _candidates("prune-channels:0.4", "prune-channels:0.4+fp16")
    assert prune_ratio(single) == 0.4 and prune_ratio(chain) is None
    assert (
        slug("prune-channels:0.4+int8-static:calib=entropy") == "prune-channels_0.4_int8-static_calib_entropy"
    )


def test_runtime_settings_name_the_candidate_but_not_its_artifact() -> None:
    recipe = parse_recipe("int8-static")
    plain, threaded = Candidate(recipe), Candidate(recipe, RuntimeSettings(threads=2))
    assert (plain.name, threaded.name) == ("int8-static", "int8-static@threads=2")
    assert plain.artifact_slug() == threaded.artifact_slug() == "int8-static"


def test_candidates_pair_with_the_providers_that_take_them() -> None:
    recipes = _candidates("fp16", "int8-static", "int8-dynamic", "prune-channels:0.4")
    paired = on_providers(recipes, ("tensorrt", "cpu", "cuda", "openvino"))
    assert _names(paired) == [
        "fp16@provider=tensorrt",
        "fp16@provider=cpu",
        "fp16@provider=cuda",
        "fp16@provider=openvino",
        "int8-static@provider=tensorrt",  # QDQ: not on cuda
        "int8-static@provider=cpu",
        "int8-static@provider=openvino",
        "int8-dynamic@provider=cpu",  # dynamic int8: the CPU provider only
        "prune-channels:0.4@provider=tensorrt",
        "prune-channels:0.4@provider=cpu",
        "prune-channels:0.4@provider=cuda",
        "prune-channels:0.4@provider=openvino",
    ]
    assert paired[0].artifact_slug() == paired[1].artifact_slug() == "fp16"  # one artifact per recipe
    assert on_providers(recipes, ()) == recipes  # without --provider: as before
    assert provider_takes(FloatModel(), "cuda") and provider_takes(parse_recipe("int8-dynamic"), None)
    # a chain is offered only on a provider that takes it
    on_cuda = RuntimeSettings(provider="cuda")
    tried = _candidates("prune-channels:0.4", "int8-static", "fp16")
    survivors = [Candidate(c.source, on_cuda) for c in tried]
    assert _names(second_phase(survivors, tried=set())) == ["prune-channels:0.4+fp16@provider=cuda"]
    threaded = Candidate(parse_recipe("fp16"), RuntimeSettings(threads=2, provider="cuda"))
    assert threaded.name == "fp16@threads=2@provider=cuda"
