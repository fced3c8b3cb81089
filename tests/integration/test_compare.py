"""`edgekit compare` and `edgekit check` on real results from the bundled model on `local`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edgekit.data import demo_model_path
from edgekit.store.open import open_store
from tests.cli_run import run_cli
from tests.integration.test_cli import FAST, assert_one_line_error

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home")
    proc = run_cli(
        "bench", str(demo_model_path()), "--runs", "200", "--min-seconds", "0.3", "--json", home=home
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["latency_ms"]["block_medians"]) == 10
    return result


def variant(result: dict[str, Any], run_id: str, factor: float = 1.0, **fingerprint: Any) -> dict[str, Any]:
    """The same run with its p50 and block medians scaled by factor (a known ground truth)."""
    changed = copy.deepcopy(result)
    changed["run_id"] = run_id
    changed["latency_ms"]["p50"] = result["latency_ms"]["p50"] * factor
    changed["latency_ms"]["block_medians"] = [m * factor for m in result["latency_ms"]["block_medians"]]
    changed["fingerprint"].update(fingerprint)
    return changed


def write(path: Path, result: dict[str, Any] | list[dict[str, Any]]) -> str:
    path.write_text(json.dumps(result))
    return str(path)


def runs(result: dict[str, Any], name: str, factor: float = 1.0) -> list[dict[str, Any]]:
    """Five runs of the real result with p50s spread +-1% around factor * its p50."""
    return [variant(result, f"{name}{i}", factor * (1 + 0.005 * (i - 2))) for i in range(5)]


def test_compare_flags_a_slowdown_and_passes_the_same(real_result: dict[str, Any], tmp_path: Path) -> None:
    """Five runs per side (a result file may hold a JSON list): each run's p50 is one observation."""
    base = write(tmp_path / "base.json", runs(real_result, "b"))
    slower = write(tmp_path / "slow.json", runs(real_result, "s", 1.10))
    proc = run_cli("compare", base, slower, "--json", home=tmp_path)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)["comparison"]
    latency = next(m for m in report["metrics"] if m["metric"] == "latency_p50_ms")
    assert report["verdict"] == "regression" and latency["verdict"] == "regression"
    assert latency["change"] == pytest.approx(0.10, abs=1e-9)
    assert 0 < latency["ci95"][0] <= 0.10 <= latency["ci95"][1]
    same = write(tmp_path / "same.json", runs(real_result, "x"))
    proc = run_cli("compare", base, same, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "latency_p50_ms" in proc.stdout and "unchanged" in proc.stdout
    proc = run_cli("compare", base, slower, "--threshold", "latency_p50_ms=30", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr  # a 30% threshold flags from +15%: +10% is reported only
    latency = json.loads(proc.stdout)["comparison"]["metrics"][0]
    assert latency["verdict"] == "unchanged" and "below" in latency["reason"]


def test_one_run_per_side_without_history_is_insufficient_data(
    real_result: dict[str, Any], tmp_path: Path
) -> None:
    """1 vs 1 with no stored history of the series: +50% is 'insufficient-data' (exit 0, exit 1
    under --strict), never a regression the data cannot show."""
    base = write(tmp_path / "base.json", real_result)
    slower = write(tmp_path / "slow.json", variant(real_result, "slow", 1.5))
    proc = run_cli("compare", base, slower, "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    latency = json.loads(proc.stdout)["comparison"]["metrics"][0]
    assert latency["verdict"] == "insufficient-data" and latency["ci95"] is None
    assert "no run-to-run noise" in latency["reason"] or "need 8 comparable runs" in latency["reason"]
    assert run_cli("compare", base, slower, "--strict", home=tmp_path).returncode == 1


def test_runs_under_different_conditions_are_not_compared(
    real_result: dict[str, Any], tmp_path: Path
) -> None:
    base = write(tmp_path / "base.json", real_result)
    other = write(tmp_path / "gov.json", variant(real_result, "gov", 1.0, governor="powersave", threads=4))
    proc = run_cli("compare", base, other, home=tmp_path)
    assert proc.returncode == 2
    assert "governor differs" in proc.stderr and "threads differs" in proc.stderr
    proc = run_cli(
        "compare",
        base,
        other,
        "--ignore-difference",
        "governor",
        "--ignore-difference",
        "threads",
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    throttled = write(tmp_path / "hot.json", variant(real_result, "hot", 1.0, throttled=True))
    proc = run_cli("compare", base, throttled, "--json", home=tmp_path)
    assert proc.returncode == 2
    assert "throttled during its window" in json.loads(proc.stdout)["comparison"]["not_comparable_reasons"][0]


@pytest.fixture(scope="module")
def pi4_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real run judged by the raspberry-pi-4 profile on `local`, with 2 threads: its energy
    budget cannot be measured there (the profile names no power sensor), so its verdict is unknown."""
    home = tmp_path_factory.mktemp("pi4")
    args = ["--profile", "raspberry-pi-4", "--threads", "2", "--json", "--no-store"]
    proc = run_cli("bench", str(demo_model_path()), *FAST, *args, home=home)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["budget"]["verdict"] == "unknown", result["budget"]
    return result


def test_not_comparable_is_one_error_line(
    real_result: dict[str, Any], pi4_result: dict[str, Any], tmp_path: Path
) -> None:
    base = write(tmp_path / "base.json", real_result)
    pi4 = write(tmp_path / "pi4.json", pi4_result)
    proc = run_cli("compare", base, pi4, home=tmp_path)
    assert_one_line_error(proc, 2, "these runs are not comparable: ")
    assert "threads differs: 1 vs 2" in proc.stderr
    other = write(tmp_path / "gov.json", variant(real_result, "gov", 1.0, governor="powersave", threads=4))
    proc = run_cli("compare", base, other, home=tmp_path)
    assert_one_line_error(proc, 2, "these runs are not comparable: ")
    assert "governor differs" in proc.stderr and "; threads differs" in proc.stderr  # "; "-joined
    proc = run_cli("check", pi4, "--baseline", base, home=tmp_path)
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.startswith("edgekit:")] == [
        line for line in proc.stderr.splitlines() if line.startswith("edgekit: error: these runs")
    ]


def test_check_strict_fails_on_an_unknown_budget_verdict_as_bench_does(
    pi4_result: dict[str, Any], tmp_path: Path
) -> None:
    pi4 = write(tmp_path / "pi4.json", pi4_result)
    assert run_cli("check", pi4, home=tmp_path).returncode == 0
    proc = run_cli("check", pi4, "--strict", home=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert run_cli("check", pi4, "--strict", "--json", home=tmp_path).returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "EMPTY", "RESULT"],
        ["compare", "RESULT", "EMPTY"],
        ["compare", "EMPTY", "EMPTY"],
        ["check", "EMPTY"],
        ["check", "RESULT", "--baseline", "EMPTY"],
        ["check", "EMPTY", "--baseline", "RESULT"],
    ],
    ids=lambda a: "-".join(a),
)
def test_a_result_file_with_no_results_is_an_input_error(
    real_result: dict[str, Any], tmp_path: Path, args: list[str]
) -> None:
    empty = tmp_path / "arr.json"
    empty.write_text("[]\n")
    result = write(tmp_path / "res.json", real_result)
    args = [str(empty) if a == "EMPTY" else result if a == "RESULT" else a for a in args]
    assert_one_line_error(run_cli(*args, home=tmp_path), 2, f"{empty}: no results in it")


def test_a_result_file_that_is_not_utf8_is_an_input_error(
    real_result: dict[str, Any], tmp_path: Path
) -> None:
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff")
    result = write(tmp_path / "res.json", real_result)
    assert_one_line_error(run_cli("compare", result, str(binary), home=tmp_path), 2, f"{binary}: not UTF-8")


def test_check_against_stored_runs(tmp_path: Path) -> None:
    for _ in range(2):
        proc = run_cli("bench", str(demo_model_path()), "--runs", "50", "--min-seconds", "0", home=tmp_path)
        assert proc.returncode == 0, proc.stderr
    history = json.loads(run_cli("history", "--json", home=tmp_path).stdout)
    newest, older = history[0]["run_id"], history[1]["run_id"]
    proc = run_cli("check", newest[:8], "--baseline", older, "--threshold", "100", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr  # a 100% threshold: only the budget can fail this
    report = json.loads(proc.stdout)
    assert report["budget"][0]["verdict"] != "fail"
    assert report["comparison"]["baseline_runs"] == [older]
    proc = run_cli("compare", "latest:local:demo_digits:2", newest, "--json", home=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert len(json.loads(proc.stdout)["comparison"]["baseline_runs"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "latest:local:demo_digits"], "'nope': no such result file or stored run id"),
        (["latest:local", "x"], "expected latest:DEVICE:MODEL"),
        (["latest:pi:m", "latest:pi:m"], "no stored run of model 'm' on device 'pi'"),
        (["BROKEN", "BROKEN"], "not valid JSON"),
        (["--threshold", "lat=3", "a.json", "b.json"], "unknown metric 'lat'"),
    ],
)
def test_bad_references_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"latency_ms": ')  # a half-written file
    args = [str(broken) if a == "BROKEN" else a for a in args]
    open_store(tmp_path / "results.sqlite").close()  # a store, with no runs (readers create none)
    proc = run_cli("compare", *args, home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
