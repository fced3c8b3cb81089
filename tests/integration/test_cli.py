"""The `edgekit` command as a user runs it: real subprocesses, real agent, real onnxruntime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_run import run_cli

pytestmark = pytest.mark.integration

FAST = ["--runs", "30", "--warmup", "2", "--min-seconds", "0.1"]
RESULT_KEYS = {
    "schema",
    "device",
    "artifact",
    "runtime",
    "latency_ms",
    "cold_start_ms",
    "memory",
    "energy",
    "thermal",
    "budget",
    "transfer",
}


edgekit = run_cli


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgekit: error: ")
    assert fragment in lines[0]
    assert proc.stdout == ""


def test_bench_json_is_one_result_object(mlp_model: Path, tmp_path: Path) -> None:
    proc = edgekit(
        "bench",
        str(mlp_model),
        "--json",
        "--runs",
        "100",
        "--min-seconds",
        "0",
        "--budget",
        "latency_p50_ms=10000",
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) >= RESULT_KEYS
    assert result["schema"] == 1
    assert result["latency_ms"]["n"] == 100  # --min-seconds 0: exactly --runs
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p90"]
    assert result["runtime"]["name"] == "onnxruntime"
    assert result["runtime"]["threads"] == 1  # the local profile's default
    assert result["memory"]["peak_rss_bytes"] > result["memory"]["model_rss_delta_bytes"] >= 0
    assert result["transfer"] | {"seconds": 0} == {
        "bytes_sent": 0,
        "skipped_cached": False,
        "method": "in-place",
        "seconds": 0,
    }
    assert result["energy"] is None and result["null_reasons"]["energy"]
    checks = {c["metric"]: c for c in result["budget"]["checks"]}
    assert checks["latency_p50_ms"] == {
        "metric": "latency_p50_ms",
        "limit": 10000.0,
        "value": result["latency_ms"]["p50"],
        "verdict": "pass",
    }
    # p99 needs more samples than 100: null with a reason, and an unknown verdict when budgeted
    assert result["latency_ms"]["p99"] is None
    assert "662" in result["latency_ms"]["null_reasons"]["p99"]
    assert result["fingerprint"]["artifact_sha256"] == result["artifact"]["sha256"]
    assert result["device"]["fingerprint"] == result["fingerprint"]["hash"]


def test_budget_failure_exits_1_and_prints_table(mlp_model: Path, tmp_path: Path) -> None:
    proc = edgekit("bench", str(mlp_model), *FAST, "--budget", "latency_p50_ms=0.000001", home=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "latency_p50_ms" in proc.stdout and "FAIL" in proc.stdout
    assert "verdict: FAIL" in proc.stdout


def test_multi_input_model_needs_and_takes_shapes(multi_input_model: Path, tmp_path: Path) -> None:
    proc = edgekit("bench", str(multi_input_model), *FAST, home=tmp_path)
    assert_one_line_error(proc, 2, "--shape tokens=1xN")
    proc = edgekit(
        "bench",
        str(multi_input_model),
        "--json",
        *FAST,
        "--shape",
        "tokens=2x16",
        "--shape",
        "mask=2x16",
        home=tmp_path,
    )
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    assert result["inputs"]["tokens"] == {"shape": [2, 16], "dtype": "int64"}
    assert result["inputs"]["mask"] == {"shape": [2, 16], "dtype": "bool"}


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d, m: d / "missing.onnx", "no such file"),
        (lambda d, m: _write(d / "notes.onnx", b"hello, I am text\n"), "not a readable ONNX model"),
        (lambda d, m: _write(d / "cut.onnx", m.read_bytes()[:300]), "not a readable ONNX model"),
    ],
    ids=["missing", "not-onnx", "truncated"],
)
def test_bad_model_files(make, fragment: str, mlp_model: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = edgekit("bench", str(make(tmp_path, mlp_model)), *FAST, home=tmp_path)
    assert_one_line_error(proc, 2, fragment)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_wrong_shape_unknown_device_bad_profile(mlp_model: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        edgekit("bench", str(mlp_model), "--shape", "input=1x65", home=tmp_path),
        2,
        "dimension 1 is 65, the model fixes it at 64",
    )
    assert_one_line_error(
        edgekit("bench", str(mlp_model), "--device", "pi4-lab", home=tmp_path), 2, "unknown device 'pi4-lab'"
    )
    profile = tmp_path / "typo.toml"
    profile.write_text(
        (Path(__file__).parents[2] / "device_profiles" / "local.toml")
        .read_text()
        .replace('name = "local"', 'name = "typo"')
        .replace("[budgets]", "[budgets]\nlatency_p9_ms = 3")
    )
    assert_one_line_error(
        edgekit("bench", str(mlp_model), "--profile", str(profile), home=tmp_path),
        2,
        "unknown key 'latency_p9_ms' (did you mean",
    )
    assert_one_line_error(
        edgekit("bench", str(mlp_model), "--budget", "p90=3", home=tmp_path), 2, "unknown metric 'p90'"
    )


def test_history_keeps_runs(mlp_model: Path, tmp_path: Path) -> None:
    for _ in range(2):
        assert (
            edgekit(
                "bench", str(mlp_model), *FAST, "--budget", "latency_p50_ms=10000", home=tmp_path
            ).returncode
            == 0
        )
    proc = edgekit("history", "--json", "--model", "mlp", home=tmp_path)
    runs = json.loads(proc.stdout)
    assert len(runs) == 2 and all(r["model"]["name"] == "mlp" for r in runs)
    assert runs[0]["created_at"] > runs[1]["created_at"]
    table = edgekit("history", home=tmp_path)
    assert table.returncode == 0 and "mlp" in table.stdout and "PASS" in table.stdout
    assert json.loads(edgekit("history", "--json", "--device", "elsewhere", home=tmp_path).stdout) == []


def test_facts_and_profiles(tmp_path: Path) -> None:
    facts = json.loads(edgekit("devices", "facts", "--json", home=tmp_path).stdout)
    assert facts["device"] == "local"
    assert facts["cores"] == os.cpu_count()
    assert facts["runtimes"]["onnxruntime"]
    profiles = json.loads(edgekit("profiles", "list", "--json", home=tmp_path).stdout)
    assert "raspberry-pi-4" in {p["name"] for p in profiles}
    shown = json.loads(edgekit("profiles", "show", "raspberry-pi-4", "--json", home=tmp_path).stdout)
    assert shown["facts"]["arch"] == "aarch64"
    assert_one_line_error(edgekit("profiles", "show", "raspberry-pi-9", home=tmp_path), 2, "unknown profile")


def test_demo_passes_local_budgets(tmp_path: Path) -> None:
    proc = edgekit("demo", "--min-seconds", "0.5", home=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: PASS" in proc.stdout
    assert "held-out accuracy" in proc.stderr


def test_runtime_crash_is_a_device_failure_and_nothing_is_stored(mlp_model: Path, tmp_path: Path) -> None:
    proc = run_cli("bench", str(mlp_model), *FAST, home=tmp_path, env={"EDGEKIT_AGENT_TEST_CRASH": "SIGKILL"})
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "edgekit: error: device 'local': bench failed: ChildCrashed" in proc.stderr
    assert "SIGKILL" in proc.stderr
    assert json.loads(edgekit("history", "--json", home=tmp_path).stdout) == []


def test_agent_that_cannot_start_is_exit_3(mlp_model: Path) -> None:
    from edgekit.core.errors import EXIT_DEVICE, DeviceError
    from edgekit.core.profiles import load_profile
    from edgekit.measure.bench import BenchOptions, run_bench
    from edgekit.transport.board import Board
    from edgekit.transport.devices import Device
    from edgekit.transport.local import LocalTransport

    class BrokenPython(Device):
        def transport(self) -> LocalTransport:
            return LocalTransport(self.name, python="/nonexistent/python3")

    with pytest.raises(DeviceError) as info:
        board = Board.of(BrokenPython("lab-1", "local", "local"), load_profile("local"))
        run_bench(mlp_model, board, BenchOptions())
    assert info.value.exit_code == EXIT_DEVICE
    assert "device 'lab-1': cannot start the agent" in str(info.value)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["bench", "--nope"], "No such option: --nope"),
        (["bench", "m.onnx", "--runs", "many"], "Invalid value for '--runs'"),
        (["history", "--limit", "-1"], "Invalid value for '--limit'"),
    ],
)
def test_command_line_mistakes_are_one_line_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    assert_one_line_error(run_cli(*args, home=tmp_path), 2, fragment)


@pytest.mark.parametrize("port", ["99999", "-5", "0"])
def test_lab_up_port_out_of_range_is_a_usage_error(tmp_path: Path, port: str) -> None:
    """A TCP port is 1-65535: anything else is exit 2 in one line, before anything is created."""
    proc = run_cli("lab", "up", "raspberry-pi-4", f"--port={port}", home=tmp_path / "home")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: error:") and "--port" in lines[0], lines
    assert not (tmp_path / "home").exists()


_FAILING_COMMAND = """
import sys
from edgekit.cli.main import app, run

@app.command("explode")
def explode() -> None:
    raise RuntimeError("boom")

sys.argv = ["edgekit", "explode"]
run()
"""


@pytest.mark.parametrize("debug", ["", "1"])
def test_an_internal_error_exits_70_with_or_without_debug(tmp_path: Path, debug: str) -> None:
    """The CLI boundary (edgekit.cli.main.run) turns an unexpected exception into exit 70; with
    EDGEKIT_DEBUG=1 it prints the traceback too, and the exit code stays 70 (not Python's 1)."""
    env = {**os.environ, "EDGEKIT_HOME": str(tmp_path), "EDGEKIT_DEBUG": debug}
    proc = subprocess.run(
        [sys.executable, "-c", _FAILING_COMMAND], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 70, proc.stderr
    assert "edgekit: internal error: RuntimeError: boom" in proc.stderr
    assert ("Traceback" in proc.stderr) is bool(debug)


def test_help_shows_no_type_after_flags(tmp_path: Path) -> None:
    """A flag takes no value: `--help` names a type only for options that take one."""
    proc = run_cli("bench", "--help", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "<bool>" not in proc.stdout
    assert "--runs <int>" in proc.stdout and "--json " in proc.stdout


@pytest.mark.parametrize("option", ["--calib", "--eval"])
def test_compress_data_errors_name_the_option_given(mlp_model: Path, tmp_path: Path, option: str) -> None:
    """A calibration or evaluation file that does not fit the model is reported under the option
    it came from (not `--inputs`, bench's option), in one line, exit 2, nothing written."""
    import numpy as np

    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, not_an_input=np.zeros((3, 4), np.float32))
    out = tmp_path / "out"
    proc = run_cli("compress", str(mlp_model), "-o", str(out), "--recipe", "int8-static", option, str(wrong),
                   home=tmp_path / "home")  # fmt: skip
    assert_one_line_error(proc, 2, f"{option} {wrong}: no array named")
    assert "--inputs" not in proc.stderr and not out.exists()


def test_compress_rejects_an_unknown_image_preprocessing(mlp_model: Path, tmp_path: Path) -> None:
    """--image-preprocess is one of four conventions, checked before anything runs (it used to be
    read only with an image folder, so a typo passed silently)."""
    out = tmp_path / "out"
    proc = run_cli("compress", str(mlp_model), "-o", str(out), "--recipe", "int8-dynamic",
                   "--image-preprocess", "bogus", home=tmp_path / "home")  # fmt: skip
    assert_one_line_error(proc, 2, "--image-preprocess")
    assert "unit" in proc.stderr and not out.exists()


def test_optimize_train_config_without_torch_fails_before_any_benchmark(
    mlp_model: Path, tmp_path: Path
) -> None:
    """`optimize --train-config` needs PyTorch: without it the search stops up front (exit 2, the
    install line), before the float and fp16 candidates are benchmarked."""
    import numpy as np

    data = tmp_path / "eval.npz"
    rng = np.random.default_rng(0)
    np.savez(data, input=rng.random((64, 64), np.float32), labels=rng.integers(0, 10, 64))
    train = tmp_path / "train.toml"
    train.write_text("[model]\nfactory = 'nosuch:factory'\n")
    out = tmp_path / "opt"
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import edgekit.cli.main as main\n"
        f"sys.argv = ['edgekit', 'optimize', {str(mlp_model)!r}, '--device', 'local', "
        f"'--eval', {str(data)!r}, '--train-config', {str(train)!r}, '-o', {str(out)!r}]\n"
        "main.run()\n"
    )
    env = {**os.environ, "EDGEKIT_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "edgekit: error: optimize --train-config needs PyTorch, which is not installed: "
        "pip install torch==2.13.0 (CPU build), or pip install -e '.[train]'"
    ]
    assert not out.exists() or not any(out.rglob("*.onnx"))


def test_strict_where_no_power_sensor_can_judge_the_energy_budget(mlp_model: Path, tmp_path: Path) -> None:
    """A profile that budgets energy, on `local` with none of its power sensors (an I2C client no
    host has): profiles show and the verdict table say so, and dropping the budget lets --strict pass."""
    local = (Path(__file__).parents[2] / "device_profiles" / "local.toml").read_text()
    text = local.replace('power = ["rapl:package-0"]', 'power = ["ina226:9-0077"]').replace(
        "[budgets]\n", "[budgets]\nenergy_mj_per_inference = 50.0\n"
    )
    profile = tmp_path / "metered.toml"
    profile.write_text(text.replace('name = "local"', 'name = "metered"'))
    why = "no power sensor on local: ina226:9-0077: no ina226 hwmon at 9-0077 under /sys/class/hwmon"
    shown = edgekit("profiles", "show", str(profile), "--device", "local", "--json", home=tmp_path)
    assert json.loads(shown.stdout)["unjudgeable"] == {
        "device": "local",
        "metrics": {"energy_mj_per_inference": why},
    }
    table = edgekit("profiles", "show", str(profile), "--device", "local", home=tmp_path).stdout
    assert "cannot be judged: " + why in table
    assert "--strict fails until dropped: --budget energy_mj_per_inference=none" in table
    generous = ["--budget", "latency_p50_ms=10000", "--budget", "latency_p90_ms=10000"]
    generous += ["--budget", "latency_p99_ms=10000", "--no-store"]
    strict = edgekit(
        "bench", str(mlp_model), *FAST, *generous, "--profile", str(profile), "--strict", home=tmp_path
    )
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "cannot be judged on local: energy_mj_per_inference" in strict.stdout
    assert "--budget energy_mj_per_inference=none" in strict.stdout
    dropped = ["--budget", "energy_mj_per_inference=none", "--strict"]
    passing = edgekit(
        "bench", str(mlp_model), *FAST, *generous, "--profile", str(profile), *dropped, home=tmp_path
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "verdict: PASS" in passing.stdout and "cannot be judged" not in passing.stdout


def test_an_inventory_port_out_of_range_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    """`devices list` and `devices doctor` read the inventory through its typed model: a port that
    is no TCP port is refused in one line, never dialled modulo 65536."""
    (tmp_path / "devices.toml").write_text('[[device]]\nname = "pi"\nhost = "127.0.0.1"\nport = 99999\n')
    for args in (["devices", "list"], ["devices", "doctor", "-d", "pi"]):
        proc = run_cli(*args, home=tmp_path)
        assert_one_line_error(proc, 2, "device[0].port: expected an integer 1-65535 (TCP port), got 99999")


def _fleet_plan(tmp_path: Path, models: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text('[plan]\nruns = 10\nmin_seconds = 0.05\n[devices]\nnames = ["local"]\n' + models)
    return path


def test_a_fleet_plan_naming_a_missing_model_fails_before_any_device(mlp_model: Path, tmp_path: Path) -> None:
    store = tmp_path / "results.sqlite"
    plan = _fleet_plan(tmp_path, f'[[model]]\npath = "{mlp_model}"\n[[model]]\npath = "fl/nosuch.onnx"\n')
    proc = run_cli("fleet", "run", str(plan), "--store", str(store), home=tmp_path)
    assert_one_line_error(proc, 2, f"{plan}: model[1].path: fl/nosuch.onnx: no such file")
    assert not store.exists()  # nothing ran
    plan = _fleet_plan(tmp_path, f'[[model]]\npath = "{mlp_model}"\nrecipes = ["int8-static"]\n')
    proc = run_cli("fleet", "run", str(plan), "--store", str(store), home=tmp_path)
    assert_one_line_error(proc, 2, f"{plan}: model[0].recipes: 'int8-static' needs calibration data")


def test_a_fleet_cell_failing_on_the_device_ends_with_one_error_line(mlp_model: Path, tmp_path: Path) -> None:
    """A cell that fails for its own reason, found only when it runs (a file that is not a model),
    leaves the others' results and ends the run with one `edgekit: error: N of M cells failed`."""
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    plan = _fleet_plan(tmp_path, f'[[model]]\npath = "{mlp_model}"\n[[model]]\npath = "broken.onnx"\n')
    proc = run_cli("fleet", "run", str(plan), "--store", str(tmp_path / "r.sqlite"), home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgekit:")]
    assert errors == ["edgekit: error: 1 of 2 cells failed (see the table)"], proc.stderr
    assert "ERROR" in proc.stdout and "broken.onnx" in proc.stdout


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of the click tree typer builds, as its words after `edgekit`."""
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, (*path, name))
    return paths


def test_every_help_names_arguments_and_option_values_plainly() -> None:
    """Usage lines name arguments as MODEL / BASELINE CANDIDATE / PLAN (not typer's `{model}`), a
    repeatable option says what it takes (`--budget METRIC=VALUE`, not `<list[str]>`), a flag no type."""
    import typer
    from typer.testing import CliRunner

    from edgekit.cli.main import app

    paths = _command_paths(typer.main.get_command(app))
    assert ("fleet", "run") in paths and ("bench",) in paths
    runner = CliRunner()
    for path in paths:
        proc = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert proc.exit_code == 0, (path, proc.output)
        for bad in ("{", "<list[", "<bool>"):
            assert bad not in proc.output, (path, bad, proc.output)
    usage = {path: runner.invoke(app, [*path, "--help"]).output.splitlines()[0] for path in paths}
    assert usage[("bench",)].endswith("bench [OPTIONS] MODEL")
    assert usage[("compare",)].endswith("compare [OPTIONS] BASELINE CANDIDATE")
    assert usage[("fleet", "run")].endswith("fleet run [OPTIONS] PLAN")
    bench = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "200"}).output
    assert "--budget METRIC=VALUE" in bench and "--shape NAME=1x3x224x224" in bench
    assert ".tflite" in bench


def test_a_store_in_a_directory_that_does_not_exist_is_an_input_error_and_nothing_is_created(
    tmp_path: Path,
) -> None:
    """Only the default store's directory ($EDGEKIT_HOME) is created; an explicit --store (or
    $EDGEKIT_STORE) names a file in an existing directory."""
    from edgekit.data import demo_model_path

    missing = tmp_path / "no" / "dir" / "x.sqlite"
    home = tmp_path / "home"
    proc = run_cli("bench", str(demo_model_path()), *FAST, "--store", str(missing), home=home)
    assert_one_line_error(proc, 2, f"--store {missing}: no such directory {missing.parent}")
    proc = run_cli("bench", str(demo_model_path()), *FAST, home=home, env={"EDGEKIT_STORE": str(missing)})
    assert_one_line_error(proc, 2, f"no such directory {missing.parent}")
    assert not (tmp_path / "no").exists()
    proc = run_cli("bench", str(demo_model_path()), *FAST, home=home / "new")
    assert proc.returncode == 0, proc.stderr
    assert (home / "new" / "results.sqlite").is_file()


@pytest.mark.parametrize("args", [["bench", "MODEL", "--runs", "5"], ["profiles", "list"], ["history"]])
def test_edgekit_home_that_is_a_file_is_exit_2_before_any_work(tmp_path: Path, args: list[str]) -> None:
    """EDGEKIT_HOME naming a file: one line saying so, before a bench is run whose result could
    not be kept (it used to measure, then fail with 'results.sqlite: File exists')."""
    from edgekit.data import demo_model_path

    home = tmp_path / "home"
    home.write_text("not a folder")
    args = [str(demo_model_path()) if a == "MODEL" else a for a in args]
    proc = run_cli(*args, home=home)
    assert_one_line_error(proc, 2, f"EDGEKIT_HOME {home} is not a folder")
    assert home.read_text() == "not a folder"


def test_profiles_list_leaves_a_broken_user_profile_out_with_a_warning(tmp_path: Path) -> None:
    """One user profile with a wrong key does not hide the others: it is named in one warning
    line; loading it by name is still exit 2."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "mine.toml").write_text("[budgets]\nlatency_p90 = 3\n")
    proc = run_cli("profiles", "list", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "raspberry-pi-4" in proc.stdout and "mine" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: warning: ") and "mine.toml" in lines[0]
    assert "unknown key 'latency_p90'" in lines[0]
    assert_one_line_error(run_cli("profiles", "show", "mine", home=tmp_path), 2, "unknown key 'latency_p90'")
