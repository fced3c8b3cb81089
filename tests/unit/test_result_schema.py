"""The typed result (edgekit.core.result) against its committed JSON Schema and against results the
pre-restructure edgekit wrote (tests/data/results_v1/: made by the edgekit whose results had no
typed model, with `bench --json`, `bench --budget METRIC=VALUE`, a compressed int8 artifact and a
fleet run on `local`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edgekit.core.errors import StoreError, UsageError
from edgekit.core.result import RESULT_SCHEMA, Result, load_result, result_json_schema, upgrade
from edgekit.data import demo_model_path
from edgekit.judge.compare import compare
from edgekit.judge.fingerprint import ACCELERATOR_KEYS
from edgekit.report import ReportFilter, build_report, render_html, render_markdown, render_openmetrics
from edgekit.store.open import open_store
from edgekit.store.references import load_reference
from tests.cli_run import run_cli
from tests.results import V1_DIR

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "schema" / "result.schema.json"
V1_FILES = sorted(V1_DIR.glob("*.json"))


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_matches_the_models() -> None:
    """scripts/schemas.py --check: a model changed without regenerating the schema fails here."""
    proc = subprocess.run(
        [sys.executable, "scripts/schemas.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(SCHEMA_FILE.read_text()) == result_json_schema()


def test_a_real_bench_json_validates_against_the_committed_schema(tmp_path: Path) -> None:
    proc = run_cli(
        "bench", str(demo_model_path()), "--runs", "30", "--min-seconds", "0.1", "--json", home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    validator().validate(result)
    assert result["schema"] == RESULT_SCHEMA
    # The same keys, in the same order, as the pre-restructure edgekit printed, plus the keys
    # added since (additive: schema 1 readers ignore them).
    old = json.loads((V1_DIR / "run1.json").read_text())
    added = ["outputs"]
    assert [key for key in result if key not in added] == list(old)
    assert all(key in result for key in added)
    added_in = {
        "latency_ms": [
            "rounds",
            "round_spread_pct",
            "process_spread_pct",
            "process_medians",
            "ci95_p50_method",
        ],
        "fingerprint": [*ACCELERATOR_KEYS, "accelerated_fraction"],
        "device": ["power_mode", "power_mode_id", "jetson_clocks"],
        "memory": ["gpu_memory"],
    }
    for section in ("device", "latency_ms", "memory", "thermal", "fingerprint", "budget"):
        new_keys = added_in.get(section, [])
        assert [k for k in result[section] if k not in new_keys] == list(old[section]), section
        assert all(key in result[section] for key in new_keys), section
    assert load_result(result, "bench --json").to_dict() == result


def test_schema_rejects_what_the_model_rejects() -> None:
    broken = json.loads((V1_DIR / "run1.json").read_text())
    broken["latency_ms"]["n"] = "many"
    assert not validator().is_valid(broken)
    with pytest.raises(UsageError, match=r"latency_ms\.n"):
        load_result(broken, "broken.json")


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.name)
def test_every_old_json_file_loads_and_validates(path: Path) -> None:
    data = json.loads(path.read_text())
    validator().validate(data)
    result = load_result(data, str(path))
    assert json.dumps(result.to_dict()) == json.dumps(data)  # the same text, key order included


def _stored_v1(tmp_path: Path) -> list[Result]:
    copy = tmp_path / "results.sqlite"
    copy.write_bytes((V1_DIR / "results.sqlite").read_bytes())
    store = open_store(copy)
    try:
        return [run.result for run in store.runs(limit=100)]
    finally:
        store.close()


def test_every_old_stored_run_loads_validates_compares_and_reports(tmp_path: Path) -> None:
    results = _stored_v1(tmp_path)
    assert len(results) == 5
    for result in results:
        validator().validate(result.to_dict())
    by_id = {r.run_id: r for r in results}
    budget = next(r for r in results if r.settings is not None and r.settings.runs == 30)
    assert budget.budget.verdict == "fail"
    assert budget.budget.checks[0].metric == "latency_p50_ms" and budget.budget.checks[0].limit == 1e-06
    int8 = next(r for r in results if r.model.name == "demo_digits-int8")
    assert int8.artifact.quality is not None and int8.artifact.quality.accuracy is not None
    fleet = next(r for r in results if r.fleet is not None)
    assert fleet.fleet is not None and fleet.fleet.recipe == "as-is"

    pair = [by_id[json.loads(p.read_text())["run_id"]] for p in (V1_DIR / "run1.json", V1_DIR / "run2.json")]
    comparison = compare([pair[0]], [pair[1]], thresholds={"*": 10.0})  # 1000%: only plumbing is checked
    assert comparison.comparable, comparison.not_comparable_reasons
    assert [m.metric for m in comparison.metrics] == [
        "latency_p50_ms",
        "peak_rss_bytes",
        "artifact_size_bytes",
    ]
    # One run per side and no stored history of the series: latency cannot be judged.
    assert comparison.verdict == "insufficient-data"
    assert [m.verdict for m in comparison.metrics][1:] == ["unchanged", "unchanged"]

    report = build_report(results, ReportFilter(), results[0].created)
    assert len(report.runs) == 5 and report.devices == ["local"]
    (fleet_entry,) = [e for h in report.histories for e in h.entries if e.result.fleet]
    # Judged in its series (same conditions), whose 3 earlier runs are too short a history.
    assert fleet_entry.verdict == "insufficient-data" and "have 3" in fleet_entry.reason
    markdown = render_markdown(report)
    assert "| local | demo_digits | int8-static |" in markdown
    assert "| local | demo_digits | as-is |" in markdown
    assert "<svg" in render_html(report)
    assert "edgekit_latency_seconds{" in render_openmetrics(report)
    # Without the fleet run, the newest plain run is the one over its --budget override.
    before_fleet = build_report([r for r in results if r.fleet is None], ReportFilter(), results[0].created)
    assert [r.run_id for r in before_fleet.budget_failures] == [budget.run_id]
    assert "**fail**" in render_markdown(before_fleet)


def test_old_json_files_are_references_for_compare(tmp_path: Path) -> None:
    base = load_reference(str(V1_DIR / "run1.json"), None)
    cand = load_reference(str(V1_DIR / "run2.json"), None)
    assert compare(base, cand, thresholds={"*": 10.0}).comparable
    listed = tmp_path / "both.json"
    listed.write_text(json.dumps([json.loads(p.read_text()) for p in V1_FILES[:2]]))
    assert len(load_reference(str(listed), None)) == 2


def test_compare_cli_on_the_old_pair(tmp_path: Path) -> None:
    proc = run_cli(
        "compare", str(V1_DIR / "run1.json"), str(V1_DIR / "run2.json"), "--threshold", "900", "--json",
        home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["comparison"]["comparable"] is True


def _newer() -> dict[str, Any]:
    data = json.loads((V1_DIR / "run1.json").read_text())
    data["schema"] = RESULT_SCHEMA + 1
    return data


def test_a_newer_result_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_result(_newer(), "future.json")
    message = caught.value.message
    assert f"result schema {RESULT_SCHEMA + 1} is newer than this edgekit knows" in message
    assert "\n" not in message
    with pytest.raises(StoreError, match="upgrade edgekit"):
        load_result(_newer(), "results store x: run y", StoreError)
    future = tmp_path / "future.json"
    future.write_text(json.dumps(_newer()))
    proc = run_cli("compare", str(future), str(V1_DIR / "run1.json"), home=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "newer than this edgekit" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("schema", [None, "1", 0, True])
def test_a_missing_or_bad_schema_version_is_not_a_result(schema: Any) -> None:
    data = json.loads((V1_DIR / "run1.json").read_text())
    if schema is None:
        del data["schema"]
    else:
        data["schema"] = schema
    with pytest.raises(UsageError, match="not an edgekit result"):
        upgrade(data, "x.json")


def test_unknown_keys_are_kept_through_a_round_trip() -> None:
    """A result of the same schema from a newer edgekit (an added optional field) passes through."""
    data = json.loads((V1_DIR / "run1.json").read_text())
    data["added_later"] = {"unit": "ms", "value": 1.5}
    data["latency_ms"]["p95"] = 0.06
    data["device"]["npu"] = "hailo-8"
    assert load_result(data, "newer.json").to_dict() == data
