"""What a recipe is: a spec (parameters, how to apply it, what it needs) and typed steps and
chains built on it. The catalog of specs is `edgekit.compress.catalog`; parsing user text
against it is `edgekit.compress.recipes`.

Text form of a step: `NAME[:POSITIONAL][,KEY=VALUE...]`, of a chain: steps joined with `+`.
A step remembers which parameters were set (`given`); its text shows only those, positional
first and bare, the others in the spec's order, so `prune-channels:0.4` and
`int8-static:calib=entropy` read back as themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.compress.data import Dataset
from edgekit.compress.params import Param, show
from edgekit.core.errors import UsageError
from edgekit.core.onnx_model import TensorInfo
from edgekit.core.profiles import DeviceProfile


@dataclass
class StepContext:
    """What applying a step may use besides its input file: the target profile (int8 scheme),
    the calibration rows (None when none were given) and a scratch directory for the run."""

    profile: DeviceProfile
    calib: Dataset | None
    workdir: Path


ApplyFn = Callable[[Mapping[str, Any], Path, Path, StepContext], dict[str, Any]]
"""(params, source model, output file, context) -> the step's report for the manifest."""


@dataclass(frozen=True)
class FloatFallback:
    """How a quantizing step keeps chosen nodes in float (the accuracy guard).

    `reference(ctx)`: the float graph the step quantized, whose node names the quantized graph
    keeps (ranked by per-layer SQNR); `requantize(params, ctx, excluded, out)`: the step again,
    with the `excluded` node names left float, written to `out`; returns its report.
    `rank(reference, data)`: the reference's node names, most likely to break first, when the
    pipeline's per-layer SQNR ranking does not fit the step (fp16: by activation range).
    `repair_floor`: when the artifact falls below the quality floor, keep nodes float until it
    holds even without --max-accuracy-drop."""

    reference: Callable[[StepContext], Path]
    requantize: Callable[[Mapping[str, Any], StepContext, list[str], Path], dict[str, Any]]
    rank: Callable[[Path, Dataset], list[Any]] | None = None
    repair_floor: bool = False


def _never(params: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class RecipeSpec:
    """One recipe: its parameters and everything the pipeline needs to run it.

    quantizes: needs float weights in Conv/MatMul/Gemm and no prior quantization (checked on the
    model before any work). terminal: changes the weight type, so a chain holds at most one such
    step and it comes last. needs_calibration(params): whether this configuration needs
    calibration rows; without them the run stops with `no_calibration_message` (one line).
    preflight(): raises when a tool the step needs is missing. check_calibration(calib, inputs):
    raises when this step cannot use the given calibration set with the model's inputs (checked
    before any work). suffix: the output file's."""

    name: str
    summary: str
    apply: ApplyFn
    params: dict[str, Param] = field(default_factory=dict)
    positional: str | None = None  # the parameter a bare `NAME:VALUE` sets
    quantizes: bool = False
    terminal: bool = False
    needs_calibration: Callable[[Mapping[str, Any]], bool] = _never
    no_calibration_message: str = ""
    preflight: Callable[[], None] | None = None
    check_calibration: Callable[[Dataset, Sequence[TensorInfo]], None] | None = None
    suffix: str = ".onnx"
    float_fallback: FloatFallback | None = None
    complete: Callable[[dict[str, Any]], None] | None = None  # derived defaults, set in place

    def parse(self, text: str) -> RecipeStep:
        """The step for the text after `NAME:` (may be empty). Raises UsageError on an unknown
        key, a bare value for a recipe without a positional parameter, or a bad value."""
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, raw = item.partition("=")
            if not sep:
                if self.positional is None:
                    raise UsageError(f"recipe {self.name!r}: {item!r} needs a KEY=VALUE form")
                key, raw = self.positional, item
            key = self._known(key)
            values[key] = self.params[key].parse(self.name, key, raw.strip())
        return self._step(values)

    def build(self, **values: Any) -> RecipeStep:
        """The step with these typed values (keyword names use `_` for `-`). Raises UsageError
        like `parse` does."""
        checked = {}
        for name, value in values.items():
            key = self._known(name)
            checked[key] = self.params[key].check(self.name, key, value)
        return self._step(checked)

    def record(self, step: RecipeStep, report: dict[str, Any]) -> dict[str, Any]:
        """The manifest's entry for one applied step: name, every parameter, the step's report."""
        return {"name": step.name, "params": step.params, "report": report}

    def _known(self, key: str) -> str:
        key = key.strip().replace("_", "-")
        if key not in self.params:
            known = ", ".join(self.params) or "none"
            raise UsageError(f"recipe {self.name!r}: unknown parameter {key!r}; parameters: {known}")
        return key

    def _step(self, values: dict[str, Any]) -> RecipeStep:
        params = {key: param.default for key, param in self.params.items()}
        params.update(values)
        if self.complete is not None:
            self.complete(params)
        order = sorted(values, key=lambda k: (k != self.positional, list(self.params).index(k)))
        return RecipeStep(self, params, tuple(order))


@dataclass(frozen=True, eq=False)
class RecipeStep:
    """One typed step: its spec, every parameter's value (defaults filled), and the keys that
    were set, which its text form shows."""

    spec: RecipeSpec
    params: dict[str, Any]
    given: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    def text(self) -> str:
        """The short form, read back by `parse_step` to an equal step: `prune-channels:0.4`."""
        parts = [
            show(self.params[key]) if key == self.spec.positional else f"{key}={show(self.params[key])}"
            for key in self.given
        ]
        return self.name + (":" + ",".join(parts) if parts else "")

    def label(self) -> str:
        """The long form, every parameter shown: `prune-channels:ratio=0.4,reconstruct=yes,...`."""
        return self.name + (
            ":" + ",".join(f"{k}={show(v)}" for k, v in self.params.items()) if self.params else ""
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecipeStep) and (self.name, self.params) == (other.name, other.params)

    def __hash__(self) -> int:
        return hash(self.label())

    def __repr__(self) -> str:
        return f"RecipeStep({self.text()!r})"


@dataclass(frozen=True)
class Recipe:
    """A chain of steps applied in order. Raises UsageError when empty, or when it holds more
    than one terminal step (quantization, fp16) or one that is not last."""

    steps: tuple[RecipeStep, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise UsageError("a recipe needs at least one step")
        terminal = [s.name for s in self.steps if s.spec.terminal]
        if len(terminal) > 1:
            raise UsageError(f"a chain can hold one quantization step, got {', '.join(terminal)}")
        if terminal and not self.steps[-1].spec.terminal:
            raise UsageError(f"put {terminal[0]} last in the chain: later steps need float weights")

    def text(self) -> str:
        """`STEP+STEP...`, each step's short form: what `parse_recipe` reads back."""
        return "+".join(step.text() for step in self.steps)

    def then(self, other: Recipe) -> Recipe:
        """This chain followed by `other`'s steps (validated as one chain)."""
        return Recipe(self.steps + other.steps)

    def __str__(self) -> str:
        return self.text()
