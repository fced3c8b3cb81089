"""What a search tries: candidates (how the artifact is made + how it is run) and which ones,
as pure functions of the model's operators and the board's runtime. Cheap, likely winners
first, so a short time budget still tries them.

Phase 1 tries each technique alone (and its variants); phase 2 chains the best survivors:
the strongest pruning that kept the accuracy, followed by each quantizer that did.
Candidates are built as typed recipes; their text (`prune-channels:0.4+int8-static`) is only
produced from them, for display, the state file and directory names.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from edgekit.compress import Recipe, step
from edgekit.train.candidates import TrainedArtifact

PRUNE_RATIOS = (0.25, 0.4, 0.5)
QUANTIZERS = ("int8-static", "fp16")  # what a pruned model is chained with


@dataclass(frozen=True)
class RuntimeSettings:
    """How a candidate is run on the board. threads: intra-op threads, None for the search's
    --threads (itself defaulting to the profile's)."""

    threads: int | None = None

    def text(self) -> str:
        """'' for the defaults, else `@threads=N` (appended to the candidate's name)."""
        return "" if self.threads is None else f"@threads={self.threads}"


@dataclass(frozen=True)
class Candidate:
    """One thing a search judges: an artifact made by a recipe chain (compressed by the search)
    or by training (made elsewhere), run with `runtime` settings."""

    source: Recipe | TrainedArtifact
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    @property
    def name(self) -> str:
        """The candidate's name in reports and the state file: the source's text + runtime's."""
        return self.source.text() + self.runtime.text()

    @property
    def recipe(self) -> Recipe | None:
        return self.source if isinstance(self.source, Recipe) else None

    def artifact_slug(self) -> str:
        """The artifact's directory name: shared by candidates that differ only in runtime."""
        return slug(self.source.text())


@dataclass(frozen=True)
class ModelTraits:
    op_types: frozenset[str]
    tflite_runtime: bool  # the board runs TFLite, not onnxruntime
    int8_scheme: str  # the board profile's default (u8s8 on x86, s8s8 on ARM)

    @property
    def has_conv(self) -> bool:
        return "Conv" in self.op_types

    @property
    def has_matmul(self) -> bool:
        return bool(self.op_types & {"MatMul", "Gemm"})


def _recipe(*steps: tuple[str, dict[str, object]]) -> Candidate:
    return Candidate(Recipe(tuple(step(name, **params) for name, params in steps)))


def _prune(ratio: float) -> tuple[str, dict[str, object]]:
    return ("prune-channels", {"ratio": ratio})


def first_phase(traits: ModelTraits) -> list[Candidate]:
    """Single-technique candidates, in the order they are tried."""
    if traits.tflite_runtime:  # the board can only run .tflite: every candidate ends in tflite-int8
        tflite = ("tflite-int8", {})
        return [
            _recipe(tflite),
            *(_recipe(_prune(r), tflite) for r in PRUNE_RATIOS if traits.has_conv),
        ]
    other_scheme = "s8s8" if traits.int8_scheme == "u8s8" else "u8s8"
    candidates = [
        _recipe(("int8-static", {})),
        _recipe(("fp16", {})),
        _recipe(("int8-static", {"calib": "percentile"})),
        _recipe(("int8-static", {"calib": "entropy"})),
        _recipe(("int8-static", {"per_channel": False})),
        _recipe(("int8-static", {"scheme": other_scheme})),
    ]
    if traits.has_matmul:
        candidates.append(_recipe(("int8-dynamic", {})))
    if traits.has_conv or "Gemm" in traits.op_types:
        candidates += [_recipe(_prune(r)) for r in PRUNE_RATIOS]
    if traits.has_matmul:
        candidates.append(_recipe(("lowrank", {"energy": 0.95})))
    return candidates


def prune_ratio(candidate: Candidate) -> float | None:
    """The ratio of a candidate that is a single prune-channels step, else None."""
    recipe = candidate.recipe
    if recipe is None or len(recipe.steps) != 1 or recipe.steps[0].name != "prune-channels":
        return None
    return float(recipe.steps[0].params["ratio"])


def _single(candidate: Candidate, family: str) -> bool:
    recipe = candidate.recipe
    return recipe is not None and len(recipe.steps) == 1 and recipe.steps[0].name == family


def second_phase(survivors: Sequence[Candidate], tried: Collection[str]) -> list[Candidate]:
    """Chains of the strongest surviving pruning with each surviving quantizer (best variant of
    int8-static as measured: the first surviving one in `survivors`' order, which the caller
    sorts fastest first), minus those whose names are in `tried`."""
    pruned = [(ratio, c) for c in survivors if (ratio := prune_ratio(c)) is not None]
    if not pruned:
        return []
    strongest = max(pruned, key=lambda item: item[0])[1]
    chains = []
    for family in QUANTIZERS:
        best = next((c for c in survivors if _single(c, family)), None)
        if best is not None and strongest.recipe is not None and best.recipe is not None:
            chains.append(Candidate(strongest.recipe.then(best.recipe), strongest.runtime))
    return [c for c in chains if c.name not in tried]


def slug(name: str) -> str:
    """A directory name for a candidate: recipe characters that are awkward in paths replaced."""
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in name)
