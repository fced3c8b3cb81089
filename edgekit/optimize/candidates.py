"""What a search tries: candidates (how the artifact is made + how it is run) and which ones,
as pure functions of the model's operators and the board's runtime. Cheap, likely winners
first, so a short time budget still tries them.

Phase 1 tries each technique alone (and its variants); phase 2 chains the best survivors:
the strongest pruning that kept the accuracy, followed by each quantizer that did.
Candidates are built as typed recipes; their text (`prune-channels:0.4+int8-static`) is only
produced from them, for display, the state file and directory names.

With `--provider` (onnxruntime execution providers, edgekit names) a candidate is a recipe on a
provider (`fp16@provider=tensorrt`), paired where the provider takes what the recipe makes
(provider_takes; docs/accelerators.md): float-typed recipes (fp16, pruning, low-rank, and the
float model itself) on every provider; int8 QDQ (`int8-static`) on the providers that run
QuantizeLinear/DequantizeLinear graphs as int8 (QDQ_PROVIDERS); dynamic int8 (`int8-dynamic`:
DynamicQuantizeLinear, MatInteger) on the CPU provider only (DYNAMIC_INT8_PROVIDERS).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from edgekit.compress import Recipe, step
from edgekit.train.candidates import TrainedArtifact

PRUNE_RATIOS = (0.25, 0.4, 0.5)
QUANTIZERS = ("int8-static", "fp16")  # what a pruned model is chained with
# Providers that execute QDQ int8 graphs (int8-static) as int8: the CPU provider, TensorRT
# (explicit quantization), OpenVINO, XNNPACK and QNN (HTP). CUDA and the others run float (or
# fp16) graphs; on them a QDQ graph's int8 nodes fall back to the CPU provider.
QDQ_PROVIDERS = frozenset({"cpu", "tensorrt", "openvino", "xnnpack", "qnn"})
# DynamicQuantizeLinear / MatMulInteger (int8-dynamic) have kernels in the CPU provider only.
DYNAMIC_INT8_PROVIDERS = frozenset({"cpu"})


@dataclass(frozen=True)
class RuntimeSettings:
    """How a candidate is run on the board. threads: intra-op threads, None for the search's
    --threads (itself defaulting to the profile's)."""

    threads: int | None = None
    provider: str | None = None  # onnxruntime execution provider (edgekit name); None: bench's default

    def text(self) -> str:
        """'' for the defaults, else `@threads=N` and/or `@provider=NAME` (appended to the
        candidate's name)."""
        text = "" if self.threads is None else f"@threads={self.threads}"
        return text + ("" if self.provider is None else f"@provider={self.provider}")


@dataclass(frozen=True)
class FloatModel:
    """The float model itself as a candidate (on a provider other than the baseline's)."""

    def text(self) -> str:
        return "float"


@dataclass(frozen=True)
class Candidate:
    """One thing a search judges: an artifact made by a recipe chain (compressed by the search)
    or by training (made elsewhere), run with `runtime` settings."""

    source: Recipe | TrainedArtifact | FloatModel
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
    return [c for c in chains if c.name not in tried and provider_takes(c.source, c.runtime.provider)]


def recipe_kind(source: Recipe | TrainedArtifact | FloatModel) -> str:
    """ "dynamic" (an int8-dynamic step), "qdq" (an int8-static step, or quantization-aware
    training, `train-qat`, which exports a QDQ graph), else "float" (float or fp16 weights)."""
    if isinstance(source, FloatModel):
        return "float"
    if isinstance(source, TrainedArtifact):
        return "qdq" if "qat" in source.name else "float"
    names = {s.name for s in source.steps}
    if "int8-dynamic" in names:
        return "dynamic"
    return "qdq" if "int8-static" in names else "float"


def provider_takes(source: Recipe | TrainedArtifact | FloatModel, provider: str | None) -> bool:
    """Whether `provider` runs what `source` makes as it is meant to run (the pairing rule in this
    module's docstring); None (no provider asked for) takes everything."""
    if provider is None:
        return True
    kind = recipe_kind(source)
    if kind == "dynamic":
        return provider in DYNAMIC_INT8_PROVIDERS
    return kind == "float" or provider in QDQ_PROVIDERS


def takers(source: Recipe | TrainedArtifact | FloatModel) -> str:
    """Which providers take what `source` makes, as a phrase for a message ("every provider" for
    float-typed ones)."""
    kind = recipe_kind(source)
    if kind == "dynamic":
        return (
            "dynamic int8 (DynamicQuantizeLinear, MatMulInteger) runs on "
            + ", ".join(sorted(DYNAMIC_INT8_PROVIDERS))
            + " only"
        )
    if kind == "qdq":
        return "an int8 QDQ graph runs as int8 on " + ", ".join(sorted(QDQ_PROVIDERS)) + " only"
    return "every provider takes a float-typed model"


def untaken(recipes: Sequence[Recipe], providers: Sequence[str]) -> list[Recipe]:
    """The recipes no provider of `providers` takes (provider_takes): they would not be tried."""
    if not providers:
        return []
    return [r for r in recipes if not any(provider_takes(r, p) for p in providers)]


def on_providers(candidates: Sequence[Candidate], providers: Sequence[str]) -> list[Candidate]:
    """Each candidate on each provider that takes it (candidate order first, then provider
    order); `candidates` unchanged when no provider is asked for."""
    if not providers:
        return list(candidates)
    return [
        Candidate(c.source, replace(c.runtime, provider=provider))
        for c in candidates
        for provider in providers
        if provider_takes(c.source, provider)
    ]


def slug(name: str) -> str:
    """A directory name for a candidate: recipe characters that are awkward in paths replaced."""
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in name)
