"""Which compression recipes a search tries: pure functions of the model's operators and the
board's runtime. Cheap, likely winners first, so a short time budget still tries them.

Phase 1 tries each technique alone (and its variants); phase 2 chains the best survivors:
the strongest pruning that kept the accuracy, followed by each quantizer that did.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

PRUNE_RATIOS = (0.25, 0.4, 0.5)
QUANTIZERS = ("int8-static", "fp16")  # what a pruned model is chained with


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


def first_phase(traits: ModelTraits) -> list[str]:
    """Single-technique candidates, in the order they are tried."""
    if traits.tflite_runtime:  # the board can only run .tflite: every candidate ends in tflite-int8
        return ["tflite-int8", *(f"prune-channels:{r}+tflite-int8" for r in PRUNE_RATIOS if traits.has_conv)]
    other_scheme = "s8s8" if traits.int8_scheme == "u8s8" else "u8s8"
    candidates = [
        "int8-static",
        "fp16",
        "int8-static:calib=percentile",
        "int8-static:calib=entropy",
        "int8-static:per-channel=no",
        f"int8-static:scheme={other_scheme}",
    ]
    if traits.has_matmul:
        candidates.append("int8-dynamic")
    if traits.has_conv or "Gemm" in traits.op_types:
        candidates += [f"prune-channels:{r}" for r in PRUNE_RATIOS]
    if traits.has_matmul:
        candidates.append("lowrank:energy=0.95")
    return candidates


def prune_ratio(name: str) -> float | None:
    """The ratio of a single prune-channels candidate, else None."""
    prefix = "prune-channels:"
    if not name.startswith(prefix) or "+" in name:
        return None
    try:
        return float(name[len(prefix) :])
    except ValueError:
        return None


def second_phase(survivors: Sequence[str], tried: Collection[str]) -> list[str]:
    """Chains of the strongest surviving pruning with each surviving quantizer (best variant of
    int8-static as measured: the first surviving one in `survivors`' order, which the caller
    sorts fastest first), minus what was already tried."""
    ratios = [r for r in (prune_ratio(s) for s in survivors) if r is not None]
    if not ratios:
        return []
    strongest = f"prune-channels:{max(ratios)}"
    quantizers = []
    for family in QUANTIZERS:
        best = next((s for s in survivors if s == family or s.startswith(family + ":")), None)
        if best is not None:
            quantizers.append(best)
    chains = [f"{strongest}+{q}" for q in quantizers]
    return [c for c in chains if c not in tried]


def slug(name: str) -> str:
    """A directory name for a candidate: recipe characters that are awkward in paths replaced."""
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in name)
