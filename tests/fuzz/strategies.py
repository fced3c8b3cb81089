"""Generated inputs: corrupted copies of real files, npz archives, TOML and JSON documents,
option values, and file names with unicode and shell metacharacters."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import numpy as np
from hypothesis import strategies as st

# Names a shell or a careless format string would trip on; the CLI must pass them through as data.
NASTY_NAMES = [
    "a b.onnx",
    "$(touch pwned).onnx",
    "`id`;rm -rf x.onnx",
    "x'\"<>|&.onnx",
    "-rf.onnx",
    "*?[].onnx",
    "naïve 模型 🚀.onnx",
    "line\nbreak.onnx",
    "tab\there.onnx",
    "%s%n{0}.onnx",
    "\u202emirror.onnx",
    os.fsdecode(b"latin1-\xe9t\xe9 \xff.onnx"),  # not UTF-8: Linux names are bytes
]

_name_chars = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="/\x00", min_codepoint=1, max_codepoint=0x1FFFF
)


@st.composite
def file_names(draw: st.DrawFn, suffix: str) -> str:
    """A file name (no '/', no NUL, <= 200 bytes) ending in suffix: nasty or generated."""
    if draw(st.booleans()):
        base = draw(st.sampled_from(NASTY_NAMES)).rsplit(".", 1)[0]
    else:
        base = draw(st.text(_name_chars, min_size=1, max_size=24))
    name = base + suffix
    while len(os.fsencode(name)) > 200:
        base = base[:-1]
        name = base + suffix
    return "x" + name if name in (".", "..") else name


@st.composite
def corrupted(draw: st.DrawFn, seed: bytes) -> bytes:
    """seed, damaged one way: truncated, bytes flipped, a range zeroed or repeated, junk spliced
    in, or replaced by junk or nothing."""
    kind = draw(st.sampled_from(["truncate", "flip", "zero", "splice", "repeat", "junk", "empty"]))
    n = len(seed)
    if kind == "empty":
        return b""
    if kind == "junk":
        return draw(st.binary(min_size=1, max_size=4096))
    if kind == "truncate":
        return seed[: draw(st.integers(0, max(0, n - 1)))]
    data = bytearray(seed)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 16))):
            i = draw(st.integers(0, n - 1))
            data[i] ^= draw(st.integers(1, 255))
    elif kind == "zero":
        i = draw(st.integers(0, n - 1))
        j = min(n, i + draw(st.integers(1, 512)))
        data[i:j] = bytes(j - i)
    elif kind == "splice":
        i = draw(st.integers(0, n))
        data[i:i] = draw(st.binary(min_size=1, max_size=256))
    else:  # repeat
        i = draw(st.integers(0, n - 1))
        j = min(n, i + draw(st.integers(1, 256)))
        data[j:j] = data[i:j] * draw(st.integers(1, 4))
    return bytes(data)


_dtypes = st.sampled_from(
    [
        "float32",
        "float64",
        "float16",
        "int8",
        "uint8",
        "int32",
        "int64",
        "bool",
        "complex64",
        "U4",
        "S3",
        "O",
        "V8",
    ]
)


@st.composite
def arrays(draw: st.DrawFn, shape_hint: tuple[int, ...]) -> np.ndarray:
    dtype = draw(_dtypes)
    shape = draw(
        st.one_of(
            st.just(shape_hint),
            st.just((0, *shape_hint[1:])),
            st.just(()),
            st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple),
        )
    )
    size = int(np.prod(shape)) if shape else 1
    if dtype == "O":
        values = draw(
            st.lists(st.one_of(st.none(), st.text(max_size=3), st.integers()), min_size=size, max_size=size)
        )
        array = np.empty(size, dtype=object)
        array[:] = values
        return array.reshape(shape)
    if dtype in ("U4", "S3", "V8"):
        return np.zeros(shape, dtype=dtype)
    fill = draw(st.sampled_from([0.0, 1.0, -1.0, float("nan"), float("inf"), 1e30, 255.0]))
    with np.errstate(all="ignore"):
        return np.full(shape, fill).astype(dtype)


@st.composite
def npz_files(draw: st.DrawFn, input_names: list[str], shape_hint: tuple[int, ...]) -> bytes:
    """An .npz: arrays named like the model's inputs (or not), any dtype (object arrays pickled),
    empty or scalar shapes; sometimes then truncated or corrupted, or a bare .npy, or not a zip."""
    if draw(st.integers(0, 7)) == 0:  # a single .npy where an archive is expected
        member = io.BytesIO()
        np.lib.format.write_array(member, draw(arrays(shape_hint)), allow_pickle=True)
        return member.getvalue()
    names = draw(
        st.lists(
            st.one_of(st.sampled_from([*input_names, "labels", "arr_0"]), st.text(_name_chars, max_size=8)),
            min_size=0,
            max_size=3,
            unique=True,
        )
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            member = io.BytesIO()
            np.lib.format.write_array(member, draw(arrays(shape_hint)), allow_pickle=True)
            archive.writestr(name + ".npy", member.getvalue())
        if draw(st.booleans()) and draw(st.booleans()):
            archive.writestr("notes.txt", b"not an array")
    data = buffer.getvalue()
    if draw(st.integers(0, 3)) == 0:
        data = draw(corrupted(data))
    return data


# --- TOML ------------------------------------------------------------------------------------

_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "-1", "1e999", "local", "../../etc/passwd", "~/x", "$HOME"]),
)
_values = st.one_of(
    _scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.text(max_size=6), _scalars, max_size=2)
)


def _toml_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def to_toml(document: dict[str, Any]) -> str:
    """A small TOML writer: top-level keys, [tables] and [[arrays of tables]] of plain values."""
    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in document.items() if not isinstance(v, dict | list)
    ]
    lines += [
        f"{_toml_key(k)} = {_toml_value(v)}"
        for k, v in document.items()
        if isinstance(v, list) and not (v and all(isinstance(x, dict) for x in v))
    ]
    for key, value in document.items():
        if isinstance(value, dict):
            lines.append(f"[{_toml_key(key)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                lines.append(f"[[{_toml_key(key)}]]")
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


@st.composite
def mutated_document(
    draw: st.DrawFn, seed: dict[str, Any], keep: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """seed with a few keys given values of the wrong type, dropped, or unknown keys added, at any
    depth (keys in keep keep their value: e.g. a host, so no case waits on DNS)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                action = (
                    "keep"
                    if key in keep
                    else draw(st.sampled_from(["keep"] * 5 + ["retype", "drop", "recurse"]))
                )
                if action == "drop":
                    continue
                out[key] = (
                    draw(_values) if action == "retype" else walk(value) if action == "recurse" else value
                )
            if draw(st.integers(0, 5)) == 0:
                out[draw(st.text(_name_chars, min_size=1, max_size=8))] = draw(_values)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(seed)


@st.composite
def toml_files(draw: st.DrawFn, seed: dict[str, Any], keep: frozenset[str] = frozenset()) -> bytes:
    """A TOML file from seed: mutated structurally (wrong types, unknown and missing keys), or
    the text of a valid one damaged, or junk."""
    text = to_toml(draw(mutated_document(seed, keep)))
    kind = draw(st.sampled_from(["structured"] * 4 + ["damaged", "junk"]))
    if kind == "structured":
        return text.encode()
    if kind == "damaged":
        return draw(corrupted(text.encode()))
    return draw(
        st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda s: s.encode("utf-8", "replace")))
    )


option_text = st.one_of(
    st.sampled_from(
        ["", "-1", "0", "1e309", "nan", "inf", "-inf", "9" * 30, "0x10", "1_000", " 5", "abc", "=", "a=b=c"]
    ),
    st.text(_name_chars, max_size=16),
)
