"""The faults the fuzz suite found, kept as fixed cases (the generated search may not draw them
again once its budget or strategies change). Same harness and checks as the fuzzed cases, plus
the exit code and message each one must give."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.testing.models import make_mlp
from tests.fuzz.harness import count_case, run_cli, workspace
from tests.fuzz.test_cli_fuzz import TINY_BENCH

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlp_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_mlp(tmp_path_factory.mktemp("found") / "mlp.onnx", features=8, hidden=8, classes=3)
    return path.read_bytes()


def _npz_with_extra_member(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    array = io.BytesIO()
    np.lib.format.write_array(array, np.zeros((1, 8), np.float32))
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("input.npy", array.getvalue())
        archive.writestr(member, data)
    return buffer.getvalue()


def test_onnx_names_not_utf8(mlp_bytes: bytes) -> None:
    """Found: a byte of a node's input name flipped to 0xf7 -> exit 70 UnicodeDecodeError."""
    damaged = mlp_bytes.replace(b"\x02w1\n", b"\x02\xf71\n", 1)
    assert damaged != mlp_bytes
    with workspace() as ws:
        model = ws.write("bad name.onnx", damaged)
        proc = run_cli(ws, ["bench", str(model), *TINY_BENCH])
        assert proc.returncode == 2 and "invalid ONNX model" in proc.stderr, proc.stderr
        out = ws.root / "out"
        proc = run_cli(ws, ["compress", str(model), "-o", str(out), "--recipe", "fp16"], output=out)
        assert proc.returncode == 2 and not out.exists(), proc.stderr
    count_case("test_found", "onnx not utf-8")


def test_model_file_name_not_utf8(mlp_bytes: bytes) -> None:
    """Found: a valid model whose file name is not UTF-8 (latin-1 bytes) -> exit 70: onnx's
    checker binding takes no such path (TypeError). The host checks it in memory; on `local` the
    runtime opens the file itself and cannot either: exit 2 saying to rename it."""
    with workspace() as ws:
        model = ws.write(os.fsdecode(b"latin1-\xe9t\xe9 \xff.onnx"), mlp_bytes)
        proc = run_cli(ws, ["bench", str(model), *TINY_BENCH])
        assert proc.returncode == 2 and "names are UTF-8; rename the file" in proc.stderr, proc.stderr
    count_case("test_found", "model file name not utf-8")


@pytest.mark.parametrize(
    ("member", "why"),
    [("notes.txt", "member 'notes.txt' is not an .npy array"), ("labels.npy", "not a readable .npz file")],
)
@pytest.mark.parametrize("use", ["--inputs", "--calib", "--eval"])
def test_npz_member_not_an_array(mlp_bytes: bytes, use: str, member: str, why: str) -> None:
    """Found: an .npz with a member that is not an .npy array -> exit 70 AttributeError ('bytes'
    has no .shape); a member whose .npy header is junk likewise."""
    with workspace() as ws:
        model = ws.write("model.onnx", mlp_bytes)
        arrays = ws.write("data.npz", _npz_with_extra_member(member, b"not an array"))
        out = ws.root / "out"
        if use == "--inputs":
            proc = run_cli(ws, ["bench", str(model), *TINY_BENCH, "--inputs", str(arrays)])
        else:
            recipe = "int8-static" if use == "--calib" else "int8-dynamic"
            args = ["compress", str(model), "-o", str(out), "--recipe", recipe, use, str(arrays)]
            proc = run_cli(ws, args, output=out)
        assert proc.returncode == 2, proc.stderr
        assert f"{use} {arrays}: " in proc.stderr and why in proc.stderr, proc.stderr
    count_case("test_found", f"npz {member} {use}")


def test_npy_given_for_npz(mlp_bytes: bytes) -> None:
    """Found: a single .npy array given as --inputs -> exit 70 TypeError (np.load returns an
    array, not an archive)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 8), np.float32))
    with workspace() as ws:
        model = ws.write("model.onnx", mlp_bytes)
        arrays = ws.write("input.npz", buffer.getvalue())
        proc = run_cli(ws, ["bench", str(model), *TINY_BENCH, "--inputs", str(arrays)])
        assert proc.returncode == 2 and "a single .npy array, not an .npz archive" in proc.stderr, proc.stderr
    count_case("test_found", "npy as npz")


def test_read_npz_names_the_option(tmp_path: Path) -> None:
    from edgekit.core.errors import InputSpecError
    from edgekit.core.inputs import read_npz

    path = tmp_path / "x.npz"
    path.write_bytes(_npz_with_extra_member("notes.txt", b"x"))
    with pytest.raises(InputSpecError, match=r"^--calib .*x\.npz: not a readable \.npz file \(member 'notes"):
        read_npz(path, "--calib")
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npz").write_bytes((tmp_path / "one.npy").read_bytes())
    with pytest.raises(InputSpecError, match=r"a single \.npy array"):
        read_npz(tmp_path / "one.npz", "--inputs")
    # numpy guesses "pickled data" for bytes that are neither a zip nor an .npy: say what it is
    (tmp_path / "junk.npz").write_bytes(b"\x00junk" * 20)
    with pytest.raises(InputSpecError, match=r"not a zip of \.npy arrays") as junk:
        read_npz(tmp_path / "junk.npz", "--eval")
    assert "pickle" not in str(junk.value)
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(InputSpecError, match=r"the file is empty"):
        read_npz(tmp_path / "empty.npz", "--eval")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--seed", "-1"),
        ("--lock-timeout", "-1"),
        ("--lock-timeout", "inf"),
        ("--thermal-wait-timeout", "inf"),
    ],
)
def test_bench_options_checked_on_the_host(mlp_bytes: bytes, option: str, value: str) -> None:
    """Found once the agent checked its params: these reached the board and came back as a
    device failure (exit 3, 'bench failed: BadRequest'); they are usage errors (exit 2)."""
    with workspace() as ws:
        model = ws.write("model.onnx", mlp_bytes)
        proc = run_cli(ws, ["bench", str(model), *TINY_BENCH, option, value])
        assert proc.returncode == 2 and f"edgekit: error: {option} must be" in proc.stderr, proc.stderr
    count_case("test_found", f"bench {option} {value}")


def _char_device(path: Path) -> Path:
    """A character device like /dev/null (1, 3) inside the workspace (mknod needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


def test_compress_never_replaces_a_file_or_device(mlp_bytes: bytes) -> None:
    """Found: `compress -o /dev/null --force` as root renamed the device away and put the artifact
    directory in its place (this suite's first version did that to the machine's /dev/null);
    `-o FILE --force` replaced the file. --force replaces an artifact directory only."""
    with workspace() as ws:
        model = ws.write("model.onnx", mlp_bytes)
        device = _char_device(ws.inputs / "null")
        for target in (device, model):
            args = ["compress", str(model), "-o", str(target), "--recipe", "fp16", "--force"]
            proc = run_cli(ws, args)
            assert proc.returncode == 2 and "exists and is not a directory" in proc.stderr, proc.stderr
        assert stat.S_ISCHR(device.lstat().st_mode) and model.read_bytes() == mlp_bytes
        proc = run_cli(ws, ["compress", str(model), "-o", "/proc/edgekit-fuzz/out", "--recipe", "fp16"])
        assert proc.returncode == 2 and "cannot write there" in proc.stderr, proc.stderr
    count_case("test_found", "compress -o device/file")


def test_report_writes_into_a_device_and_through_a_link() -> None:
    """Found: `report --format markdown -o /dev/null` as root replaced the device with a regular
    file (the atomic rename); a link to a file was replaced by a file."""
    from edgekit.store.open import open_store

    with workspace() as ws:
        open_store(ws.home / "results.sqlite").close()  # report only reads: an empty store
        device = _char_device(ws.inputs / "null")
        proc = run_cli(ws, ["report", "--format", "markdown", "-o", str(device)])
        assert proc.returncode == 0 and stat.S_ISCHR(device.lstat().st_mode), proc.stderr
        target = ws.write("report.md", "old\n")
        link = ws.inputs / "link.md"
        link.symlink_to(target.name)
        proc = run_cli(ws, ["report", "-o", str(link)], output=target)
        assert proc.returncode == 0 and link.is_symlink() and "edgekit report" in target.read_text()
    count_case("test_found", "report -o device/link")


@pytest.mark.parametrize("target", ["{file}", "{file}/sub", "/proc/edgekit-fuzz"])
def test_optimize_out_dir_that_cannot_be_made(target: str) -> None:
    """Found: `optimize -o FILE` (or under a file, or on /proc) -> exit 70 FileExistsError /
    FileNotFoundError from mkdir."""
    data = Path(__file__).resolve().parents[2] / "edgekit" / "data"
    with workspace() as ws:
        afile = ws.write("afile", "keep\n")
        out = target.format(file=afile)
        model, test_set = str(data / "demo_digits.onnx"), str(data / "demo_digits_test.npz")
        proc = run_cli(ws, ["optimize", model, "-o", out, "--eval", test_set, "--device", "local"])
        assert proc.returncode == 2 and f"edgekit: error: -o {out}: " in proc.stderr, proc.stderr
        assert afile.read_text() == "keep\n"
    count_case("test_found", f"optimize -o {target}")


def test_read_only_store_with_a_name_that_is_not_utf8() -> None:
    """Found: `history --store` naming an existing file whose name is not UTF-8 (latin-1 bytes)
    -> exit 70 UnicodeEncodeError building the read-only SQLite URI."""
    with workspace() as ws:
        store = ws.inputs / os.fsdecode(b"latin1-\xe9t\xe9.sqlite")
        store.write_bytes(b"")
        proc = run_cli(ws, ["history", "--store", str(store)])
        assert proc.returncode == 2 and "no results store at" in proc.stderr, proc.stderr
    count_case("test_found", "read-only store, latin-1 name")
