"""The `edgekit` command on a team store: a real PostgreSQL server, real benchmarks, real fleet runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.data import demo_model_path
from edgekit.testing.ssh import free_port
from tests.cli_run import run_cli
from tests.integration.test_cli import FAST, assert_one_line_error

pytestmark = pytest.mark.integration


def test_bench_into_postgresql_then_history_from_it(pg_url: str, tmp_path: Path) -> None:
    bench = run_cli("bench", str(demo_model_path()), *FAST, "--store", pg_url, "--json", home=tmp_path)
    assert bench.returncode in (0, 1), bench.stderr
    result = json.loads(bench.stdout)

    history = run_cli("history", "--store", pg_url, "--json", home=tmp_path)
    assert history.returncode == 0, history.stderr
    assert json.loads(history.stdout) == [result]
    assert not (tmp_path / "results.sqlite").exists()  # nothing went to the default SQLite store

    by_env = run_cli("history", "--json", home=tmp_path, env={"EDGEKIT_STORE": pg_url})
    assert [r["run_id"] for r in json.loads(by_env.stdout)] == [result["run_id"]]

    report = run_cli("report", "--store", pg_url, "-o", str(tmp_path / "team.md"), "--json", home=tmp_path)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["runs"] == 1
    assert result["run_id"][:12] in (tmp_path / "team.md").read_text()


def test_unreachable_team_store_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    url = f"postgresql://team:s3cret@127.0.0.1:{free_port()}/results"
    proc = run_cli("history", "--store", url, home=tmp_path)
    assert_one_line_error(proc, 2, "cannot connect")
    assert "s3cret" not in proc.stderr and "team:***@127.0.0.1" in proc.stderr


def test_fleet_run_into_postgresql_resumes_from_it(pg_url: str, tmp_path: Path) -> None:
    plan = tmp_path / "nightly.toml"
    plan.write_text(
        '[plan]\nruns = 20\nmin_seconds = 0\n[devices]\nnames = ["local"]\n'
        f'[[model]]\npath = "{demo_model_path()}"\nrecipes = ["as-is", "fp16"]\n'
    )
    proc = run_cli("fleet", "run", str(plan), "--store", pg_url, "--json", home=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["resumed"] is False and len(report["devices"]["local"]["runs"]) == 2
    assert f"stored in {pg_url}" in proc.stderr

    history = json.loads(run_cli("history", "--store", pg_url, "--json", home=tmp_path).stdout)
    assert sorted(r["fleet"]["recipe"] for r in history) == ["as-is", "fp16"]
    assert {r["fleet"]["plan_run_id"] for r in history} == {report["plan_run_id"]}
    again = run_cli("fleet", "run", str(plan), "--store", pg_url, "--json", home=tmp_path)
    assert json.loads(again.stdout)["resumed"] is False  # the first run finished: a new one starts
