"""The CLI in subprocesses with generated files and option values (tests/fuzz/harness.py holds
the checks: exit 0-3 never 70, one error line, no traceback, nothing written outside the output
path). Each test's example count is its share of the suite's budget (about 1 s per subprocess)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.testing.models import make_mlp
from tests.fuzz.harness import FUZZ_DATA, LAST_EXIT, count_case, fuzz, run_cli, workspace
from tests.fuzz.strategies import corrupted, file_names, npz_files, option_text, toml_files

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STORE_V1 = (REPO / "tests/data/results_v1/results.sqlite").read_bytes()
RESULT_V1 = json.loads((REPO / "tests/data/results_v1/run1.json").read_text())
PROFILE = {
    "schema": 1,
    "name": "fuzzed",
    "facts": {"arch": "any", "cores": 0, "memory_mb": 0, "runtime": "onnxruntime", "default_threads": 1},
    "sensors": {"thermal_zone": "", "throttle": "none", "power": ["rapl:package-0"]},
    "budgets": {"latency_p50_ms": 5.0, "peak_rss_mb": 1024.0},
    "sources": {"facts": "fuzz", "budgets": "fuzz"},
}
# Port 1 on loopback refuses at once: a valid inventory costs no network wait.
INVENTORY = {
    "device": [
        {
            "name": "board-a",
            "host": "127.0.0.1",
            "port": 1,
            "user": "pi",
            "profile": "raspberry-pi-4",
            "tags": ["lab"],
            "host_key_policy": "strict",
            "connect_timeout": 2,
        },
    ]
}
PLAN = {
    "plan": {"name": "fuzzed", "runs": 2, "min_seconds": 0.0, "warmup": 0, "inventory": "devices.toml"},
    "devices": {"names": ["local"]},
    "model": [{"path": "model.onnx", "recipes": ["as-is"]}],
}
TINY = [
    "--device",
    "local",
    "--runs",
    "2",
    "--warmup",
    "0",
    "--min-seconds",
    "0",
    "--processes",
    "1",
    "--rounds",
    "1",
]
TINY_BENCH = [*TINY, "--no-store"]


@pytest.fixture(scope="module")
def small_mlp(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_mlp(
        tmp_path_factory.mktemp("seed") / "mlp.onnx", features=8, hidden=8, classes=3
    ).read_bytes()


@given(data=st.data())
@fuzz(24)
def test_corrupted_onnx(data: st.DataObject, small_mlp: bytes) -> None:
    seed = data.draw(
        st.sampled_from([small_mlp, (REPO / "edgekit/data/demo_digits.onnx").read_bytes()]), label="seed"
    )
    content = data.draw(corrupted(seed), label="content")
    name = data.draw(file_names(".onnx"), label="name")
    command = data.draw(st.sampled_from(["bench", "fp16", "int8-dynamic"]), label="command")
    with workspace() as ws:
        model = ws.write(name, content)
        out = ws.root / data.draw(file_names(""), label="out")
        if command == "bench":
            run_cli(ws, ["bench", str(model), *TINY_BENCH])
        else:
            run_cli(ws, ["compress", str(model), "-o", str(out), "--recipe", command], output=out)
    count_case("test_corrupted_onnx", f"exit {LAST_EXIT[0]}")


@given(data=st.data())
@fuzz(8)
def test_corrupted_tflite(data: st.DataObject) -> None:
    content = data.draw(corrupted((FUZZ_DATA / "tiny.tflite").read_bytes()), label="content")
    with workspace() as ws:
        model = ws.write(data.draw(file_names(".tflite"), label="name"), content)
        run_cli(ws, ["bench", str(model), *TINY_BENCH])
    count_case("test_corrupted_tflite", f"exit {LAST_EXIT[0]}")


@given(data=st.data())
@fuzz(24)
def test_npz_inputs(data: st.DataObject, small_mlp: bytes) -> None:
    npz = data.draw(npz_files(["input"], (1, 8)), label="npz")
    use = data.draw(st.sampled_from(["--inputs", "--calib", "--eval"]), label="use")
    with workspace() as ws:
        model = ws.write("model.onnx", small_mlp)
        arrays = ws.write(data.draw(file_names(".npz"), label="name"), npz)
        out = ws.root / "out"
        if use == "--inputs":
            run_cli(ws, ["bench", str(model), *TINY_BENCH, "--inputs", str(arrays)])
        else:
            recipe = "int8-static" if use == "--calib" else "int8-dynamic"
            run_cli(
                ws, ["compress", str(model), "-o", str(out), "--recipe", recipe, use, str(arrays)], output=out
            )
    count_case("test_npz_inputs", f"exit {LAST_EXIT[0]}")


@given(data=st.data())
@fuzz(28)
def test_toml_files(data: st.DataObject, small_mlp: bytes) -> None:
    kind = data.draw(st.sampled_from(["profile", "inventory", "plan", "bench-profile"]), label="kind")
    with workspace() as ws:
        if kind in ("profile", "bench-profile"):
            path = ws.write(data.draw(file_names(".toml"), label="name"), data.draw(toml_files(PROFILE)))
            if kind == "profile":
                run_cli(ws, ["profiles", "show", str(path)])
            else:
                run_cli(
                    ws, ["bench", str(ws.write("model.onnx", small_mlp)), *TINY_BENCH, "--profile", str(path)]
                )
        elif kind == "inventory":
            path = ws.write("devices.toml", data.draw(toml_files(INVENTORY, frozenset({"host"}))))
            device = data.draw(st.sampled_from(["board-a", "local"]), label="device")
            run_cli(ws, ["devices", "doctor", "--inventory", str(path), "--device", device], timeout=60)
        else:
            ws.write("model.onnx", small_mlp)
            ws.write("devices.toml", data.draw(toml_files(INVENTORY, frozenset({"host"}))))
            plan = ws.write("plan.toml", data.draw(toml_files(PLAN, frozenset({"inventory"}))))
            store = ws.root / "store.sqlite"
            run_cli(ws, ["fleet", "run", str(plan), "--store", str(store)], output=store)
    count_case("test_toml_files", f"exit {LAST_EXIT[0]}")


def _damage_result(data: st.DataObject) -> bytes:
    from tests.fuzz.strategies import mutated_document

    kind = data.draw(st.sampled_from(["mutated", "mutated", "list", "damaged", "junk"]), label="result kind")
    document: Any = data.draw(mutated_document(RESULT_V1), label="result")
    if kind == "list":
        document = [document, data.draw(st.one_of(st.none(), st.integers(), st.just(RESULT_V1)))]
    text = json.dumps(document, allow_nan=True).encode()
    if kind == "damaged":
        return data.draw(corrupted(text))
    if kind == "junk":
        return data.draw(st.binary(max_size=300))
    return text


@given(data=st.data())
@fuzz(16)
def test_result_files(data: st.DataObject) -> None:
    with workspace() as ws:
        first = ws.write(data.draw(file_names(".json"), label="a"), _damage_result(data))
        second = ws.write("b.json", _damage_result(data))
        command = data.draw(st.sampled_from(["compare", "check", "check-baseline"]), label="command")
        extra = ["--json"] if data.draw(st.booleans()) else []
        if command == "compare":
            run_cli(ws, ["compare", str(first), str(second), *extra])
        elif command == "check":
            run_cli(ws, ["check", str(first), *extra])
        else:
            run_cli(ws, ["check", str(first), "--baseline", str(second), *extra])
    count_case("test_result_files", f"exit {LAST_EXIT[0]}")


@given(data=st.data())
@fuzz(12)
def test_store_files(data: st.DataObject) -> None:
    """Commands that read stored results, on a damaged copy of a real SQLite store."""
    content = data.draw(corrupted(STORE_V1), label="store")
    commands = [
        ["history"],
        ["history", "--json"],
        ["report", "--format", "markdown"],
        ["check", "latest:local:mlp"],
    ]
    command = data.draw(st.sampled_from(commands), label="command")
    with workspace() as ws:
        store = ws.write(data.draw(file_names(".sqlite"), label="name"), content)
        # The store is the command's to open: SQLite may add its -wal/-shm or journal next to it.
        run_cli(ws, [*command, "--store", str(store)], output=ws.inputs)
    count_case("test_store_files", f"exit {LAST_EXIT[0]}")


# Output paths a user may name by mistake: a place nothing can be created (a virtual file
# system), a file's child, the input model itself, a FIFO, a link, a non-empty folder. All inside
# the case's workspace but the first two: never a real system path (as root, `-o /dev/null
# --force` once replaced the device with a directory).
AWKWARD_OUTPUTS = [
    "/proc/edgekit-fuzz",
    "/sys/edgekit-fuzz",
    "{model}",
    "{model}/sub",
    "{fifo}",
    "{link}",
    "{inputs}",
]


@given(data=st.data())
@fuzz(10)
def test_awkward_output_paths(data: st.DataObject, small_mlp: bytes) -> None:
    target = data.draw(st.sampled_from(AWKWARD_OUTPUTS), label="output")
    command = data.draw(st.sampled_from(["compress", "compress --force", "report"]), label="command")
    with workspace() as ws:
        model = ws.write("model.onnx", small_mlp)
        fifo, link = ws.inputs / "fifo", ws.inputs / "link"
        os.mkfifo(fifo)
        link.symlink_to(model)
        out = Path(target.format(model=model, inputs=ws.inputs, fifo=fifo, link=link))
        if command == "report" and target == "{fifo}":
            out = ws.inputs / "report.md"  # opening a FIFO with no reader waits for one, as it should
        if command == "report":
            args = ["report", "--format", "markdown", "-o", str(out)]
        else:
            args = ["compress", str(model), "-o", str(out), "--recipe", "fp16", *command.split()[1:]]
        before = model.read_bytes()
        # report -o may replace the file the user names (a link's target); compress never does.
        named = Path(os.path.realpath(out))
        run_cli(ws, args, output=named if command == "report" and named.is_relative_to(ws.root) else None)
        if command != "report":
            assert model.read_bytes() == before and fifo.is_fifo() and link.is_symlink()
    count_case("test_awkward_output_paths", f"exit {LAST_EXIT[0]}")


# Commands that validate their options before any work: each slot takes a generated value.
OPTION_COMMANDS = [
    ["report", "--since", "{}"],
    ["report", "--limit", "{}"],
    ["report", "--format", "{}"],
    ["report", "--threshold", "{}"],
    ["report", "-o", "{out}"],
    ["report", "--device", "{}", "--model", "{}", "--json"],
    ["history", "--limit", "{}", "--model", "{}"],
    ["history", "--device", "{}", "--json"],
    ["compare", "{}", "{}"],
    ["compare", "{result}", "{result}", "--threshold", "{}"],
    ["compare", "{result}", "{result}", "--ignore-difference", "{}"],
    ["check", "{}"],
    ["check", "{result}", "--threshold", "{}"],
    ["bench", "{model}", *TINY, "--runs", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--shape", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--budget", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--threads", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--seed", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--lock-timeout", "{}", "--thermal-wait-timeout", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--warmup", "{}", "--processes", "{}", "--rounds", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--min-seconds", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--device", "{}", "--no-store"],
    ["bench", "{model}", *TINY, "--store", "{}"],
    ["compress", "{model}", "-o", "{out}", "--recipe", "{}"],
    ["compress", "{model}", "-o", "{out}", "--recipe", "int8-dynamic", "--output-kind", "{}"],
    ["compress", "{model}", "-o", "{out}", "--recipe", "int8-dynamic", "--fix-input", "{}"],
    ["compress", "{model}", "-o", "{out}", "--recipe", "fp16", "--target", "{}"],
    ["compress", "{model}", "-o", "{out}", "--recipe", "int8-static", "--image-preprocess", "{}"],
    ["profiles", "show", "{}"],
    ["devices", "doctor", "--device", "{}"],
    ["fleet", "run", "{}"],
]


@given(data=st.data())
@fuzz(32)
def test_option_values(data: st.DataObject, small_mlp: bytes) -> None:
    template = data.draw(st.sampled_from(OPTION_COMMANDS), label="template")
    with workspace() as ws:
        model = ws.write("model.onnx", small_mlp)
        result = ws.write("run1.json", json.dumps(RESULT_V1))
        out = ws.root / data.draw(file_names(""), label="out")
        args = []
        for slot in template:
            if slot == "{}":
                value = data.draw(option_text, label="value")
                args.append(value if not value.startswith("-") else "=" + value)  # a value, not an option
            else:
                args.append(slot.format(model=model, out=out, result=result))
        # A relative --store names a file in the working directory: that is its output path.
        run_cli(ws, args, output=ws.cwd if "--store" in template else out, timeout=120)
    count_case("test_option_values", f"exit {LAST_EXIT[0]}")
