"""SSH faults a new user meets, on real parts: a port that is not SSH (a real HTTP server, a silent
listener on loopback), a real sshd without an SFTP subsystem, an encrypted key, a server that
refuses key logins, a full disk on the board (a small tmpfs as its workdir). Each failure is one
`edgekit: error:` line with exit 3 and leaves no partial file on the board; the CLI runs as a
user runs it (tests/cli_run.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edgekit.core.artifacts import load_artifact
from edgekit.data import demo_model_path
from edgekit.testing.ssh import Sshd, sshd_missing_reason, start_sshd, write_inventory
from tests.cli_run import run_cli
from tests.integration.test_external_data import make_external_model

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sshd_missing_reason() is not None, reason=str(sshd_missing_reason())),
]
FAST = ["--runs", "20", "--min-seconds", "0", "--json", "--no-store"]


PROGRESS = "b: starting agent"  # bench's progress line (stderr is not a terminal here), before the error


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed run (exit 3), without its `edgekit: error: ` prefix."""
    assert proc.returncode == 3, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line != PROGRESS]
    assert len(lines) == 1, proc.stderr  # no paramiko log, no traceback, no second message
    assert lines[0].startswith("edgekit: error: device 'b': "), lines[0]
    return lines[0].removeprefix("edgekit: error: device 'b': ")


def leftovers(workdir: Path) -> list[str]:
    """Partial uploads on the board: `.part` files anywhere under its workdir."""
    return sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*.part"))


# -- a port that is not an SSH server ------------------------------------------------------------

HTTP_REPLY = "not an SSH server: got \"HTTP/1.0 400 Bad request syntax ('SSH-2.0-paramiko_"


class _Http(BaseHTTPRequestHandler):
    default_request_version = "HTTP/1.0"  # answers a bad request line with a status line, as web servers do

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _listener(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback port whose every connection is handed to `answer`, in a thread; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except OSError:
                continue
            accepted.append(conn)
            answer(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A listener that accepts connections and never says a word."""
    yield from _listener(lambda conn: None)


@pytest.fixture(scope="module")
def hangup_port() -> Iterator[int]:
    """A listener that accepts connections and closes them at once."""
    yield from _listener(lambda conn: conn.close())


@pytest.mark.parametrize(
    ("server", "command", "message"),
    [
        ("http", "bench", HTTP_REPLY),
        ("http", "doctor", HTTP_REPLY),
        ("silent", "bench", "no SSH banner within 1 s"),
        ("silent", "doctor", "no SSH banner within 1 s"),
        ("hangup", "doctor", "not an SSH server: it closed the connection without a banner"),
    ],
)
def test_a_port_that_is_not_ssh_is_one_line(
    request: pytest.FixtureRequest, tmp_path: Path, server: str, command: str, message: str
) -> None:
    port = request.getfixturevalue(f"{server}_port")
    entry = {"name": "b", "host": "127.0.0.1", "port": port, "connect_timeout_s": 1}
    inventory = write_inventory(tmp_path / "devices.toml", {**entry, "known_hosts": str(tmp_path / "kh")})
    args = (
        ["devices", "doctor", "--json"] if command == "doctor" else ["bench", str(demo_model_path()), *FAST]
    )
    proc = run_cli(*args, "--device", "b", "--inventory", str(inventory), home=tmp_path)
    assert one_error_line(proc).startswith(f"127.0.0.1:{port}: {message}")


# -- a board whose sshd has no SFTP subsystem ----------------------------------------------------


@pytest.fixture(scope="module")
def sshd_no_sftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd-no-sftp"), sftp=False)
    yield server
    server.stop()


def test_without_sftp_every_file_goes_over_exec_resumed_then_reused(
    sshd_no_sftp: Sshd, tmp_path: Path
) -> None:
    config = (sshd_no_sftp.user_key.parent / "sshd_config").read_text()
    assert "Subsystem" not in config  # the minimal image's sshd: SFTP requests are refused
    model = make_external_model(tmp_path / "m" / "net.onnx", 200, 300, "weights/net.bin")
    artifact = load_artifact(model)
    workdir = tmp_path / "board"
    data = workdir / "artifacts" / artifact.sha256 / "weights" / "net.bin"
    data.parent.mkdir(parents=True)
    weights = (model.parent / "weights" / "net.bin").read_bytes()
    Path(f"{data}.part").write_bytes(weights[:50_000])  # an upload a dropped link cut short
    inventory = write_inventory(tmp_path / "devices.toml", sshd_no_sftp.inventory_entry("b", workdir))
    args = ["bench", str(model), "--device", "b", "--inventory", str(inventory), *FAST]

    first = run_cli(*args, home=tmp_path)
    assert first.returncode == 0, first.stderr
    transfer = json.loads(first.stdout)["transfer"]
    assert (transfer["bytes_sent"], transfer["skipped_cached"]) == (artifact.size_bytes - 50_000, False)
    assert data.read_bytes() == weights
    assert (data.parent.parent / "net.onnx").read_bytes() == model.read_bytes()
    agents = list(workdir.glob("agent-*.pyz"))
    assert len(agents) == 1 and agents[0].stat().st_size > 0 and leftovers(workdir) == []
    agent_mtime = agents[0].stat().st_mtime_ns

    second = run_cli(*args, home=tmp_path)
    assert second.returncode == 0, second.stderr
    transfer = json.loads(second.stdout)["transfer"]
    assert (transfer["bytes_sent"], transfer["skipped_cached"]) == (0, True)
    assert agents[0].stat().st_mtime_ns == agent_mtime  # the agent was reused too, not sent again


# -- keys and authentication ---------------------------------------------------------------------


def encrypted_key(sshd: Sshd, path: Path, passphrase: str) -> Path:
    """An ed25519 key encrypted with `passphrase`, authorized on `sshd`."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    with (sshd.user_key.parent / "authorized_keys").open("a") as authorized:
        authorized.write(path.with_suffix(".pub").read_text())
    return path


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "the private key KEY is encrypted and no passphrase is available ($PI_PASS is unset); "),
        ({"PI_PASS": "wrong"}, "cannot decrypt the private key KEY with $PI_PASS (wrong passphrase?)"),
        ({"PI_PASS": "s3cret phrase"}, None),
    ],
    ids=["no-passphrase", "wrong-passphrase", "passphrase-from-env"],
)
def test_an_encrypted_key(sshd: Sshd, tmp_path: Path, env: dict[str, str], message: str | None) -> None:
    key = encrypted_key(sshd, tmp_path / "id_ed25519", "s3cret phrase")
    entry = sshd.inventory_entry("b", tmp_path / "w", key_file=str(key), passphrase_env="PI_PASS")
    inventory = write_inventory(tmp_path / "devices.toml", entry)
    proc = run_cli(
        "devices", "facts", "--device", "b", "--inventory", str(inventory), "--json", home=tmp_path, env=env
    )
    if message is None:
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["device"] == "b"
    else:
        assert one_error_line(proc).startswith(message.replace("KEY", str(key)))
        assert not (tmp_path / "w").exists()  # refused before anything reached the board


def test_a_server_that_refuses_key_logins(tmp_path: Path) -> None:
    server = start_sshd(
        tmp_path / "sshd", extra_config="PubkeyAuthentication no\nPasswordAuthentication yes\n"
    )
    try:
        inventory = write_inventory(tmp_path / "devices.toml", server.inventory_entry("b", tmp_path / "w"))
        proc = run_cli("devices", "facts", "--device", "b", "--inventory", str(inventory), home=tmp_path)
    finally:
        server.stop()
    assert one_error_line(proc) == (
        f"authentication failed for root@127.0.0.1:{server.port}: the server refuses public-key "
        "logins (it allows: password); edgekit logs in with keys only"
    )
    assert not (tmp_path / "w").exists()


# -- a full disk on the board --------------------------------------------------------------------


@pytest.fixture
def small_disk(tmpfs: Callable[[str, str], Path]) -> Path:
    """A 256 KiB tmpfs as the board's workdir: room for the agent (~110 KiB), not the demo model."""
    return tmpfs("board", "256k")


def test_a_full_disk_is_one_line_and_leaves_nothing_partial(
    sshd_no_sftp: Sshd, small_disk: Path, tmp_path: Path
) -> None:
    """Without SFTP as with it (tests/integration/test_ssh_links.py): a file that does not fit is
    not started."""
    inventory = write_inventory(tmp_path / "devices.toml", sshd_no_sftp.inventory_entry("b", small_disk))
    proc = run_cli(
        "bench", str(demo_model_path()), "--device", "b", "--inventory", str(inventory), *FAST, home=tmp_path
    )
    assert one_error_line(proc).startswith("the board's disk is full: demo_digits.onnx needs 0.2 MiB, ")
    assert leftovers(small_disk) == []
    assert [p.name for p in (small_disk / "artifacts").iterdir()] == []


def test_a_disk_that_fills_during_an_upload_leaves_nothing_partial(
    sshd_no_sftp: Sshd, small_disk: Path, tmp_path: Path
) -> None:
    """Another process fills the board's disk between the free-space check and the upload (the
    board's `python`, run for each exec upload, fills it first, leaving 64 KiB): the write fails
    part-way, the .part file is removed, and the error is one line."""
    filler = small_disk / "someone-elses.log"
    python = tmp_path / "python3"
    python.write_text(
        "#!/bin/sh\n"
        f'if [ "$3" = receive ]; then cat /dev/zero > "{filler}" 2>/dev/null; '
        f'truncate -s -64K "{filler}"; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    entry = sshd_no_sftp.inventory_entry("b", small_disk, python=str(python))
    inventory = write_inventory(tmp_path / "devices.toml", entry)
    proc = run_cli(
        "bench", str(demo_model_path()), "--device", "b", "--inventory", str(inventory), *FAST, home=tmp_path
    )
    error = one_error_line(proc)
    assert error.startswith("the board's disk is full: agent-") and error.endswith(
        "(OSError: [Errno 28] No space left on device; the partial upload was removed)"
    ), error
    assert leftovers(small_disk) == [] and filler.stat().st_size > 0
    assert sorted(p.name for p in small_disk.iterdir()) == ["someone-elses.log"]


def test_a_named_ssh_config_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    """A device's own `ssh_config` file must exist (a typo used to be ignored, so its Host alias,
    ProxyJump or key silently did not apply); only the default ~/.ssh/config may be absent."""
    entry = {"name": "b", "host": "127.0.0.1", "port": 9, "user": "root", "profile": "raspberry-pi-4"}
    missing = tmp_path / "no_such_config"
    inventory = write_inventory(tmp_path / "devices.toml", {**entry, "ssh_config": str(missing)})
    proc = run_cli("devices", "doctor", "--device", "b", "--inventory", str(inventory), home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"edgekit: error: ssh_config {missing}: no such file"]
