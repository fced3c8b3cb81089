"""The types of request params (docs/protocol.md, "Ops"), checked before an op runs: a param of
the wrong type or out of range is a `BadRequest` reply that names it, never an `Internal` error
from deep inside the bench. Params not listed here are passed through unchecked."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Tuple

from edgekit_agent.failure import AgentFailure

MAX_DIM = 2**31  # an input dimension beyond this cannot be allocated on any board


def _integer(low: int) -> Tuple[str, Callable[[Any], bool]]:
    def ok(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    return "an integer >= %d" % low, ok


def _number(low: Optional[float]) -> Tuple[str, Callable[[Any], bool]]:
    def ok(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return math.isfinite(value) and (low is None or value >= low)

    return ("a finite number >= %g" % low if low is not None else "a finite number"), ok


def _positive(value: Any) -> bool:
    """A finite number > 0 (a size cap, MiB)."""
    return (
        not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    )


def _kind(name: str, kinds: Tuple[type, ...]) -> Tuple[str, Callable[[Any], bool]]:
    return name, lambda value: isinstance(value, kinds)


def _input_specs(value: Any) -> bool:
    """{name: {"shape": [int >= 0, ...], "dtype": str}}"""
    if not isinstance(value, dict):
        return False
    for spec in value.values():
        if not isinstance(spec, dict) or not isinstance(spec.get("dtype"), str):
            return False
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM for d in shape
        ):
            return False
    return True


def _providers(value: Any) -> bool:
    """[str, ...]: execution provider names, in order of preference"""
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _provider_options(value: Any) -> bool:
    """{provider: {key: str}}"""
    if not isinstance(value, dict):
        return False
    return all(
        isinstance(opts, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in opts.items())
        for opts in value.values()
    )


def _chosen_by(value: Any) -> bool:
    return value in ("explicit", "profile", "default")


def _delegate(value: Any) -> bool:
    """A TFLite delegate: default, xnnpack, none, gpu, edgetpu or a library path (one line)."""
    return isinstance(value, str) and bool(value.strip()) and "\n" not in value and "\x00" not in value


def _string_map(value: Any) -> bool:
    """{str: str}, as a delegate's options (load_delegate passes keys and values as C strings)."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) and "\x00" not in k + v for k, v in value.items()
    )


# name -> (what it must be, check); None is accepted where the protocol allows "not given".
PARAMS: Dict[str, Tuple[str, Callable[[Any], bool]]] = {
    "artifact": _kind("a string", (str,)),
    "runs": _integer(0),
    "warmup": _integer(0),
    "rounds": _integer(1),
    "processes": _integer(1),
    "process": _integer(0),
    "seed": _integer(0),
    "threads": _integer(0),
    "round_min_runs": _integer(1),
    "min_seconds": _number(0.0),
    "max_seconds": _number(0.0),
    "round_seconds": _number(0.0),
    "lock_timeout_s": _number(0.0),
    "thermal_wait_timeout_s": _number(0.0),
    "thermal_poll_s": _number(0.0),
    "max_start_temp_c": _number(None),
    "runtime": _kind("a string", (str,)),
    "thermal_zone": _kind("a string", (str,)),
    "inputs_file": _kind("a string", (str,)),
    "inputs": ("an object {name: {shape: [int >= 0], dtype: str}}", _input_specs),
    "power_sensors": _kind("a list", (list,)),
    "sensor_options": _kind("an object", (dict,)),
    "providers": ("a list of provider names (strings)", _providers),
    "provider_options": ("an object {provider: {key: string}}", _provider_options),
    "chosen_by": ('"explicit", "profile" or "default"', _chosen_by),
    "delegate": ("default, xnnpack, none, gpu, edgetpu or a library path", _delegate),
    "delegate_options": ("an object {key: string value}", _string_map),
    "fresh_engine": _kind("true or false", (bool,)),
    "engine_cache_max_mb": ("a finite number > 0", _positive),
}
NULLABLE = {
    "threads",
    "max_start_temp_c",
    "thermal_zone",
    "inputs_file",
    "inputs",
    "power_sensors",
    "sensor_options",
    "providers",
    "provider_options",
    "chosen_by",
    "delegate",
    "delegate_options",
    "fresh_engine",
    "engine_cache_max_mb",
}
SIDES = ("baseline", "candidate")  # ab: each side is a bench params object


def check_params(params: Dict[str, Any], where: str = "params") -> None:
    """Raise AgentFailure("BadRequest") naming the first param of the wrong type or range."""
    for name, value in params.items():
        if name in SIDES and where == "params":
            if value is not None:
                if not isinstance(value, dict):
                    raise AgentFailure("BadRequest", "params.%s must be an object (bench params)" % name)
                check_params(value, "params.%s" % name)
            continue
        rule = PARAMS.get(name)
        if rule is None or (value is None and name in NULLABLE):
            continue
        what, ok = rule
        if not ok(value):
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise AgentFailure(
                "BadRequest", "%s.%s must be %s, got %s" % (where, name, what, shown), param=name
            )
