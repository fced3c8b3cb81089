"""Recipe strings -> steps. `NAME[:ARG][,KEY=VALUE...]`, chained with `+`.

Examples: `int8-static`, `int8-static:calib=entropy,per-channel=no`, `prune-channels:0.5`,
`lowrank:energy=0.95`, `prune-channels:0.5+int8-static`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from edgekit.core.errors import UsageError


@dataclass(frozen=True)
class Param:
    kind: type  # float, int, bool or str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    summary: str
    params: dict[str, Param] = field(default_factory=dict)
    positional: str | None = None  # the parameter a bare `NAME:VALUE` sets
    quantizes: bool = False  # needs float weights in Conv/MatMul/Gemm and no prior quantization


RECIPES: dict[str, RecipeSpec] = {
    spec.name: spec
    for spec in (
        RecipeSpec(
            "int8-static",
            "QDQ int8 with calibrated activations (weights per channel by default)",
            {
                "calib": Param(str, "minmax", "calibration method", ("minmax", "entropy", "percentile")),
                "per-channel": Param(bool, True, "per-channel weight scales"),
                "scheme": Param(str, "target", "activation/weight types", ("target", "u8s8", "s8s8")),
                "reduce-range": Param(str, "target", "7-bit weights", ("target", "yes", "no")),
                "symmetric-activations": Param(bool, False, "zero-point 0 for activations"),
            },
            quantizes=True,
        ),
        RecipeSpec(
            "int8-dynamic",
            "int8 weights, activations quantized at run time (for MatMul-heavy models)",
            {"per-channel": Param(bool, True, "per-channel weight scales")},
            quantizes=True,
        ),
        RecipeSpec(
            "int4-weight",
            "4-bit block-wise MatMul weights, float activations (MatMulNBits; for transformer-style models)",
            {
                "block-size": Param(int, 32, "weights per scale", minimum=16, maximum=256),
                "symmetric": Param(bool, True, "zero-point-free 4-bit weights"),
            },
            quantizes=True,
        ),
        RecipeSpec(
            "tflite-int8",
            "full-integer int8 TFLite through onnx2tf + TensorFlow, calibrated on --calib (tflite extra)",
            quantizes=True,
        ),
        RecipeSpec(
            "fp16",
            "float16 weights and compute (keeps float32 inputs and outputs)",
            {"keep-io": Param(bool, True, "keep float32 model inputs and outputs")},
        ),
        RecipeSpec(
            "prune-magnitude",
            "zero the smallest weights (unstructured; smaller compressed, not faster on dense runtimes)",
            {"sparsity": Param(float, 0.5, "fraction of weights set to zero", minimum=0.0, maximum=0.99)},
            positional="sparsity",
        ),
        RecipeSpec(
            "prune-channels",
            "remove the lowest-L1 output channels of Conv/Gemm layers (structured; faster)",
            {
                "ratio": Param(
                    float, 0.5, "fraction of channels removed per layer", minimum=0.0, maximum=0.95
                ),
                "reconstruct": Param(bool, True, "least-squares refit of the next layer on calibration data"),
                "multiple": Param(
                    int, 8, "round kept channels up to a multiple of this", minimum=1, maximum=64
                ),
            },
            positional="ratio",
        ),
        RecipeSpec(
            "lowrank",
            "SVD factorisation of Gemm/MatMul weights (rank by retained energy or ratio)",
            {
                "energy": Param(
                    float, 0.0, "retained squared singular value energy", minimum=0.0, maximum=1.0
                ),
                "ratio": Param(float, 0.0, "rank as a fraction of full rank", minimum=0.0, maximum=1.0),
            },
            positional="ratio",
        ),
    )
}


@dataclass(frozen=True)
class RecipeStep:
    name: str
    params: dict[str, Any]

    def label(self) -> str:
        return self.name + (
            ":" + ",".join(f"{k}={_show(v)}" for k, v in self.params.items()) if self.params else ""
        )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _convert(recipe: str, key: str, param: Param, raw: str) -> Any:
    where = f"recipe {recipe!r}: {key}={raw!r}"
    if param.kind is bool:
        lowered = raw.lower()
        if lowered in ("yes", "true", "1", "on"):
            return True
        if lowered in ("no", "false", "0", "off"):
            return False
        raise UsageError(f"{where}: expected yes or no")
    if param.kind in (int, float):
        try:
            value = param.kind(raw)
        except ValueError:
            raise UsageError(f"{where}: expected a number ({param.help})") from None
        if (param.minimum is not None and value < param.minimum) or (
            param.maximum is not None and value > param.maximum
        ):
            raise UsageError(
                f"{where}: expected {param.minimum:g} <= value <= {param.maximum:g} ({param.help})"
            )
        return value
    if param.choices is not None and raw not in param.choices:
        raise UsageError(f"{where}: expected one of {', '.join(param.choices)}")
    return raw


def parse_step(text: str) -> RecipeStep:
    name, _, spec_text = text.strip().partition(":")
    spec = RECIPES.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(RECIPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown recipe {name!r}{hint}; recipes: {', '.join(RECIPES)}")
    params = {key: param.default for key, param in spec.params.items()}
    for item in filter(None, (part.strip() for part in spec_text.split(","))):
        key, sep, raw = item.partition("=")
        if not sep:
            if spec.positional is None:
                raise UsageError(f"recipe {name!r}: {item!r} needs a KEY=VALUE form")
            key, raw = spec.positional, item
        key = key.strip().replace("_", "-")
        if key not in spec.params:
            known = ", ".join(spec.params) or "none"
            raise UsageError(f"recipe {name!r}: unknown parameter {key!r}; parameters: {known}")
        params[key] = _convert(name, key, spec.params[key], raw.strip())
    if name == "lowrank" and not params["energy"] and not params["ratio"]:
        params["energy"] = 0.9
    return RecipeStep(name, params)


def parse_recipes(items: list[str]) -> list[RecipeStep]:
    """One or more `--recipe` values, each possibly a `+` chain, in order."""
    steps = [parse_step(part) for item in items for part in item.split("+") if part.strip()]
    if not steps:
        raise UsageError(f"--recipe is required; recipes: {', '.join(RECIPES)}")
    quantizing = [s.name for s in steps if RECIPES[s.name].quantizes or s.name == "fp16"]
    if len(quantizing) > 1:
        raise UsageError(f"a chain can hold one quantization step, got {', '.join(quantizing)}")
    if quantizing and steps[-1].name not in quantizing:
        raise UsageError(f"put {quantizing[0]} last in the chain: later steps need float weights")
    return steps
