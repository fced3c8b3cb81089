"""Hardware-in-the-loop example: the bundled model against each selected board's budgets.

    pytest tests/hil --edge-devices local                      # this machine (what CI runs)
    pytest tests/hil --edge-inventory devices.toml --edge-tags lab --junitxml=hil.xml

Copy this file for your own models: every test runs once per selected board (ids = names).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.data import demo_model_path
from edgekit.pytest_plugin import EdgeBench, EdgeDevice, assert_within_budget

pytestmark = pytest.mark.edge


def test_bundled_model_is_within_budget(edge_device: EdgeDevice, edge_bench: EdgeBench) -> None:
    result = edge_bench(demo_model_path(), runs=200, min_seconds=0.5)
    assert result["device"]["name"] == edge_device.name
    assert_within_budget(result)


def test_fp16_artifact_is_smaller_and_within_budget(
    edge_device: EdgeDevice, edge_bench: EdgeBench, tmp_path: Path
) -> None:
    artifact = tmp_path / "digits-fp16"
    compress(
        demo_model_path(),
        artifact,
        CompressOptions(steps=parse_recipes(["fp16"]), profile=edge_device.profile),
    )
    result = edge_bench(artifact, runs=200, min_seconds=0.5)
    assert result["artifact"]["size_bytes"] < demo_model_path().stat().st_size * 0.6
    assert_within_budget(result)
