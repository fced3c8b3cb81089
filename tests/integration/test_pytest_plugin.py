"""The pytest plugin, run in a child pytest as a user would: selection, skips, JUnit, budgets, xdist."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgekit.data import demo_model_path

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _this_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child pytest imports the plugin of the tree under test, not an installed edgekit
    (an editable install may point at another checkout)."""
    import os

    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    )


TESTS = f"""
import json, os
import pytest
from edgekit.pytest_plugin import assert_within_budget

MODEL = {str(demo_model_path())!r}

@pytest.mark.edge
def test_fits(edge_device, edge_bench):
    result = edge_bench(MODEL, runs=50, min_seconds=0.2)
    assert_within_budget(result)

@pytest.mark.edge
def test_over_budget(edge_device, edge_bench):
    result = edge_bench(MODEL, runs=50, min_seconds=0, budget_overrides={{"latency_p50_ms": 1e-6}})
    assert_within_budget(result)
"""


def test_edge_tests_skip_with_a_reason_without_devices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hil=TESTS)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no edge device selected (--edge-inventory / --edge-devices local)*"])


def test_on_local_with_junit_properties_and_a_readable_budget_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hil=TESTS)
    result = pytester.runpytest_subprocess("--edge-devices", "local", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*BudgetExceeded: demo_digits on local is FAIL against profile local:*",
            "*metric*value*budget*verdict*",
            "*latency_p50_ms*<= 1e-06*FAIL*",
        ]
    )
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    assert set(cases) == {"test_fits[local]", "test_over_budget[local]"}
    properties = {p.get("name"): p.get("value") for p in cases["test_fits[local]"].iter("property")}
    assert properties["edge_device"] == "local"
    assert float(properties["edge_latency_p50_ms"]) > 0
    assert int(properties["edge_peak_rss_bytes"]) > 0 and properties["edge_verdict"] in ("pass", "unknown")


def test_devices_by_tag_from_an_inventory(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        devices='[[device]]\nname = "pi-a"\nhost = "10.0.0.1"\ntags = ["lab"]\n'
        '[[device]]\nname = "pi-b"\nhost = "10.0.0.2"\ntags = ["lab"]\n'
        '[[device]]\nname = "jetson"\nhost = "10.0.0.3"\ntags = ["gpu"]\n',
    )
    pytester.makepyfile(test_hil=TESTS)
    result = pytester.runpytest_subprocess(
        "--edge-inventory", "devices.toml", "--edge-tags", "lab", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(["*test_fits[[]pi-a[]]*", "*test_fits[[]pi-b[]]*"])
    assert "jetson" not in result.stdout.str()
    bad = pytester.runpytest_subprocess("--edge-inventory", "devices.toml", "--edge-devices", "pi-z")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--edge-devices: not in devices.toml: pi-z*"])


def test_xdist_workers_never_bench_local_at_once(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    windows = tmp_path / "windows.jsonl"
    pytester.makepyfile(
        test_parallel=f"""
import json
import pytest

@pytest.mark.edge
@pytest.mark.parametrize("copy", range(4))
def test_bench(edge_device, edge_bench, copy):
    result = edge_bench({str(demo_model_path())!r}, runs=20, min_seconds=0.6, processes=2, rounds=2)
    rounds = result["latency_ms"]["rounds"]
    assert [r["process"] for r in rounds] == [0, 0, 1, 1]
    with open({str(windows)!r}, "a") as out:  # the bench's span: first round's start to last round's end
        last = rounds[-1]
        span = {{"started_unix": rounds[0]["started_unix"],
                "duration_s": last["started_unix"] + last["duration_s"] - rounds[0]["started_unix"]}}
        out.write(json.dumps(span) + "\\n")
"""
    )
    result = pytester.runpytest_subprocess("-n", "2", "--edge-devices", "local")
    result.assert_outcomes(passed=4)
    spans = sorted(
        (w["started_unix"], w["started_unix"] + w["duration_s"])
        for w in map(json.loads, windows.read_text().splitlines())
    )
    assert len(spans) == 4
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two timed windows overlapped: {spans}"


def test_edge_compare_passes_the_same_model_and_fails_a_heavier_one(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import edgekit
    from edgekit.testing.models import make_mlp

    # the child pytest imports the same edgekit as this one (a source tree that is not installed too)
    tree = str(Path(edgekit.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")])))

    light = make_mlp(pytester.path / "light.onnx", features=256, hidden=256, batch=32)
    heavy = make_mlp(pytester.path / "heavy.onnx", features=256, hidden=1024, batch=32)
    pytester.makepyfile(
        test_ab=f"""
import pytest
from edgekit.pytest_plugin import assert_no_regression

@pytest.mark.edge
def test_same(edge_device, edge_compare):
    report = edge_compare({str(light)!r}, {str(light)!r}, rounds=6, round_seconds=0.03)
    assert report["ab"]["rounds_planned"] == 6
    assert_no_regression(report)

@pytest.mark.edge
def test_heavier(edge_device, edge_compare):
    assert_no_regression(edge_compare({str(light)!r}, {str(heavy)!r}, rounds=8, round_seconds=0.03))
"""
    )
    result = pytester.runpytest_subprocess("--edge-devices", "local", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Regression: A/B *: regression*", "*latency_p50_ms: regression*"])
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    properties = {p.get("name"): p.get("value") for p in cases["test_heavier[local]"].iter("property")}
    assert (
        properties["edge_ab_verdict"] == "regression" and float(properties["edge_ab_latency_change"]) > 0.25
    )


def test_an_explicit_provider_the_device_lacks_fails_the_test_naming_it(pytester: pytest.Pytester) -> None:
    """edge_bench takes the accelerator flags as keywords; this machine has no CUDA provider, so
    the test fails with one line naming it (never a CPU run reported as CUDA)."""
    pytester.makepyfile(
        test_accel=f"""
import pytest

@pytest.mark.edge
def test_cuda(edge_device, edge_bench):
    edge_bench({str(demo_model_path())!r}, runs=5, min_seconds=0, processes=1, providers="cuda")

@pytest.mark.edge
def test_bad_delegate_for_onnx(edge_device, edge_bench):
    edge_bench({str(demo_model_path())!r}, runs=5, min_seconds=0, delegate="xnnpack")

@pytest.mark.edge
def test_cpu_with_a_placement_budget(edge_device, edge_bench):
    from edgekit.pytest_plugin import assert_within_budget

    # options as a profile's table; the demo CNN runs all on the CPU: fraction 0 < 0.5
    result = edge_bench(
        {str(demo_model_path())!r}, runs=5, min_seconds=0, processes=1, providers=["cpu"],
        provider_options={{"cpu": {{"arena_extend_strategy": "kSameAsRequested"}}}},
        budget_overrides={{"min_accelerated_fraction": 0.5}},
    )
    assert result["runtime"]["requested_providers"] == ["cpu"]
    assert_within_budget(result)
"""
    )
    result = pytester.runpytest_subprocess("--edge-devices", "local")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        ["*local: *ProviderMissing: provider cuda*", "*local: *apply to TFLite models*"]
    )
    # a minimum is shown as one: value >= limit
    result.stdout.fnmatch_lines(["*min_accelerated_fraction*0*>= 0.5*FAIL*"])
