"""The bench's input tensors: generated from a seed, or read from an .npz inputs file."""

from __future__ import annotations

import zipfile
import zlib
from typing import Any, Dict, List

from edgekit_agent.failure import AgentFailure


def build_feeds(params: Dict[str, Any], input_names: List[str]) -> Dict[str, Any]:
    """{input name: numpy array}. params["inputs"][name] gives "shape" and "dtype"; with
    params["inputs_file"] the arrays of that .npz are used (first rows if the batch exceeds
    the shape), else floats ~ N(0, 1) from params["seed"], integers and booleans = 1."""
    import numpy as np

    spec = params.get("inputs") or {}
    missing = [name for name in input_names if name not in spec]
    if missing:
        raise AgentFailure("InputError", "no input spec for %s" % ", ".join(missing), inputs=missing)
    inputs_file = params.get("inputs_file")
    arrays: Dict[str, Any] = {}
    if inputs_file:
        try:
            loaded = np.load(inputs_file, allow_pickle=False)
            if not hasattr(loaded, "files"):  # np.load reads an .npy file too
                raise ValueError("a single .npy array, not an .npz archive")
            with loaded as data:
                arrays = {name: data[name] for name in input_names if name in data.files}
            odd = [name for name, value in arrays.items() if not isinstance(value, np.ndarray)]
            if odd:
                raise ValueError("member %r is not an .npy array" % odd[0])
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise AgentFailure("InputError", "cannot read inputs file %s: %s" % (inputs_file, exc)) from None
    rng = np.random.default_rng(int(params.get("seed", 0)))
    feeds: Dict[str, Any] = {}
    for name in input_names:
        shape = [int(d) for d in spec[name]["shape"]]
        try:
            dtype = np.dtype(spec[name]["dtype"])
        except TypeError:
            raise AgentFailure(
                "InputError", "input %r: unknown dtype %r" % (name, spec[name]["dtype"])
            ) from None
        if inputs_file:
            if name not in arrays:
                raise AgentFailure("InputError", "inputs file has no array %r" % name, input=name)
            value = arrays[name]
            if value.ndim and shape:
                value = value[: shape[0]]
            feeds[name] = np.ascontiguousarray(value.astype(dtype, copy=False))
        elif dtype.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[name] = np.ones(shape, dtype=dtype)
    return feeds
