"""Fleet plans with accelerator keys, through the real agent on `local`: the providers asked for
reach every cell; a provider the board lacks fails that cell (exit 3), the board's other cells
run and are kept; a bad plan value is exit 2 before any device is touched."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest

from edgekit.data import demo_model_path
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration
HAS_GGML = importlib.util.find_spec("onnxruntime_ggml") is not None


def write_plan(tmp_path: Path, plan_keys: str, models: str) -> Path:
    plan = tmp_path / "accel.toml"
    plan.write_text(
        f"[plan]\nruns = 5\nmin_seconds = 0\nprocesses = 1\nrounds = 1\n{plan_keys}"
        f'[devices]\nnames = ["local"]\n{models}'
    )
    return plan


def stored_runtimes(store: Path) -> list[dict]:
    with sqlite3.connect(store) as conn:
        return [json.loads(row[0])["runtime"] for row in conn.execute("SELECT result_json FROM runs")]


def test_plan_providers_reach_the_cells_and_a_missing_one_fails_only_its_cell(tmp_path: Path) -> None:
    model = demo_model_path()
    plan = write_plan(
        tmp_path,
        'providers = ["cpu"]\n',
        f'[[model]]\npath = "{model}"\n'
        f'[[model]]\npath = "{model}"\nproviders = ["cuda"]\n'
        f'[[model]]\npath = "{model}"\nrecipes = ["fp16"]\n',
    )
    store = tmp_path / "results.sqlite"
    proc = run_cli("fleet", "run", str(plan), "--store", str(store), "--json", home=tmp_path)
    assert proc.returncode == 3, proc.stderr
    local = json.loads(proc.stdout)["devices"]["local"]
    assert local["failed"] is False  # the board works: only the cuda cell failed
    assert len(local["runs"]) == 2  # the cells before and after the cuda one ran and were kept
    [error] = local["errors"]
    assert error["cell"] == "demo_digits.onnx [as-is] (cuda)" and error["exit"] == "device"
    assert "ProviderMissing" in error["error"] and "onnxruntime-gpu" in error["error"]
    runtimes = stored_runtimes(store)
    assert [r["requested_providers"] for r in runtimes] == [["cpu"], ["cpu"]]
    assert {r["chosen_by"] for r in runtimes} == {"explicit"}
    assert all(r["placement"]["by_provider"]["CPUExecutionProvider"]["nodes"] > 0 for r in runtimes)


def test_a_bad_plan_value_is_exit_2_before_any_device(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path,
        "",
        f'[[model]]\npath = "{demo_model_path()}"\n'
        f'[[model]]\npath = "{demo_model_path()}"\nproviders = ["cu da"]\n',
    )
    store = tmp_path / "results.sqlite"
    proc = run_cli("fleet", "run", str(plan), "--store", str(store), home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "model[1].providers" in proc.stderr and "cu da" in proc.stderr
    assert proc.stderr.count("edgekit: error:") == 1
    assert not store.exists()  # nothing ran, nothing stored


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime_ggml") is None, reason="onnxruntime-ggml not installed"
)
def test_a_provider_refusing_its_model_fails_only_its_cell(tmp_path: Path) -> None:
    """ggml with device=gpu (no GPU backend here) refuses the session: ProviderFailed, that cell only."""
    from tests.integration.test_providers import mlp

    model = mlp(tmp_path / "mlp.onnx")
    plan = write_plan(
        tmp_path,
        "",
        f'[[model]]\npath = "{model}"\nproviders = ["ggml"]\n'
        'provider_options = { ggml = { device = "gpu" } }\n'
        f'[[model]]\npath = "{model}"\n',
    )
    proc = run_cli(
        "fleet",
        "run",
        str(plan),
        "--store",
        str(tmp_path / "r.sqlite"),
        "--json",
        home=tmp_path,
        env={"ORT_GGML_LOG": "warn"},
    )
    assert proc.returncode == 3, proc.stderr
    local = json.loads(proc.stdout)["devices"]["local"]
    assert local["failed"] is False and len(local["runs"]) == 1
    [error] = local["errors"]
    assert "ProviderFailed" in error["error"] and error["exit"] == "device"


@pytest.mark.skipif(not HAS_GGML, reason="onnxruntime-ggml not installed (scripts/test)")
def test_the_table_and_history_say_which_providers_ran_each_cell(tmp_path: Path) -> None:
    model = demo_model_path()
    plan = write_plan(
        tmp_path,
        "",
        f'[[model]]\npath = "{model}"\nproviders = ["cpu"]\n'
        f'[[model]]\npath = "{model}"\nproviders = ["ggml"]\n',  # ggml takes none of its nodes
    )
    store = tmp_path / "results.sqlite"
    proc = run_cli("fleet", "run", str(plan), "--store", str(store), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "demo_digits.onnx" in line]
    cells = [[cell.strip() for cell in row.split("│")[1:-1]] for row in rows]
    header = next(line for line in proc.stdout.splitlines() if "device" in line)
    assert "providers" in header
    # the two rows of the same model differ by what was asked for and what ran
    assert [c[3] for c in cells] == ["cpu", "ggml → cpu"], proc.stdout
    history = run_cli("history", "--store", str(store), home=tmp_path)
    assert history.returncode == 0, history.stderr
    assert "providers" in history.stdout and "ggml → cpu" in history.stdout
