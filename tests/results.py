"""Typed results for tests: a real result written by the first schema-1 edgekit
(tests/data/results_v1/run1.json: the demo model on `local`), with the fields a test sets."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from edgekit.core.result import Result, load_result

V1_DIR = Path(__file__).resolve().parent / "data" / "results_v1"


@cache
def _real_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((V1_DIR / "run1.json").read_text())
    del data["run_id"]  # a result as bench builds it, not yet stored
    return data


def result_json(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The real result's JSON object with `changes` applied: "section.key" (dotted path) -> value."""
    data = copy.deepcopy(_real_json())
    for path, value in (changes or {}).items():
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return data


def make_result(changes: dict[str, Any] | None = None) -> Result:
    """result_json(changes) loaded as a Result (validated like a stored run)."""
    return load_result(result_json(changes), "test result")
