"""The board-side stager: verified reuse, resume offsets, atomic commit, corrupt uploads removed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from edgekit.transport import board_stage

PAYLOAD = b"model bytes " * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_check_reports_cache_resume_offset_and_free_space(tmp_path: Path) -> None:
    target = tmp_path / "artifacts" / f"{SHA}.onnx"
    state = board_stage.check(str(target), SHA)
    assert target.parent.is_dir()  # made on the way
    assert state["cached"] is False and state["part_bytes"] == 0 and state["free_bytes"] > 0
    target.with_name(target.name + ".part").write_bytes(PAYLOAD[:100])
    assert board_stage.check(str(target), SHA)["part_bytes"] == 100
    target.write_bytes(PAYLOAD[:-1] + b"X")  # same size, other content: not a cache hit
    assert board_stage.check(str(target), SHA)["cached"] is False
    target.write_bytes(PAYLOAD)
    assert board_stage.check(str(target), SHA)["cached"] is True


def test_commit_renames_only_the_exact_content(tmp_path: Path) -> None:
    target = tmp_path / "a.onnx"
    partial = tmp_path / "a.onnx.part"
    partial.write_bytes(PAYLOAD[:50])
    assert board_stage.commit(str(target), SHA, len(PAYLOAD)) == {"ok": False, "part_bytes": 50}
    assert partial.exists() and not target.exists()  # short: kept, to resume
    partial.write_bytes(b"x" * len(PAYLOAD))
    assert board_stage.commit(str(target), SHA, len(PAYLOAD))["ok"] is False
    assert not partial.exists() and not target.exists()  # whole size, wrong bytes: corrupt, removed
    partial.write_bytes(PAYLOAD)
    assert board_stage.commit(str(target), SHA, len(PAYLOAD))["ok"] is True
    assert target.read_bytes() == PAYLOAD and not partial.exists()


def test_served_over_stdin_as_the_board_runs_it(tmp_path: Path) -> None:
    script = Path(board_stage.__file__).read_text()
    requests = [
        {"op": "check", "path": str(tmp_path / "x.bin"), "sha256": SHA},
        {"op": "commit", "path": str(tmp_path / "x.bin")},
        {"op": "format-disk"},
    ]
    done = subprocess.run(
        [sys.executable, "-c", script, "serve", "~/somewhere"],
        input="".join(json.dumps(r) + "\n" for r in requests),
        capture_output=True,
        text=True,
        check=True,
    )
    hello, checked, bad_commit, unknown = (json.loads(line) for line in done.stdout.splitlines())
    assert hello == {
        "workdir": str(Path("~/somewhere").expanduser()),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
    }
    assert checked["cached"] is False
    assert "KeyError" in bad_commit["error"] and unknown == {"error": "unknown op 'format-disk'"}


def test_receive_cuts_to_the_offset_then_appends_stdin_as_the_board_runs_it(tmp_path: Path) -> None:
    """The exec-channel upload (boards without SFTP): `receive PATH.part OFFSET` keeps the first
    OFFSET bytes of an earlier upload, drops anything after them, appends stdin."""
    script = Path(board_stage.__file__).read_text()
    partial = tmp_path / "m.onnx.part"
    partial.write_bytes(PAYLOAD[:300] + b"garbage after the resume point")
    done = subprocess.run(
        [sys.executable, "-c", script, "receive", str(partial), "300"],
        input=PAYLOAD[300:],
        capture_output=True,
        check=True,
    )
    assert json.loads(done.stdout) == {"part_bytes": len(PAYLOAD)}
    assert partial.read_bytes() == PAYLOAD
    assert board_stage.commit(str(tmp_path / "m.onnx"), SHA, len(PAYLOAD))["ok"] is True
    fresh = subprocess.run(
        [sys.executable, "-c", script, "receive", str(tmp_path / "new" / "x.part"), "0"],
        input=b"abc",
        capture_output=True,
        check=True,
    )
    assert json.loads(fresh.stdout)["error"].startswith(
        "FileNotFoundError: "
    )  # no directory: said, not raised
    assert board_stage.remove(str(partial)) == {"removed": False}
    (tmp_path / "m.onnx").rename(partial)
    assert board_stage.remove(str(partial)) == {"removed": True} and not partial.exists()
