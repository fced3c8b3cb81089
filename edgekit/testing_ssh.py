"""A real OpenSSH server on 127.0.0.1 for tests and benchmarks: own host key, user key and port.

Public, like edgekit.testing: users test their own fleet plans against it. Needs root and
OpenSSH's sshd (apt-get install openssh-server).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def sshd_missing_reason() -> str | None:
    if not Path(SSHD).exists():
        return "OpenSSH server not installed (scripts/test installs it when run as root)"
    if os.geteuid() != 0:
        return "the loopback sshd fixture logs in as root"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class Sshd:
    port: int
    user_key: Path
    known_hosts: Path
    process: subprocess.Popen[bytes]
    host_key_line: str

    def inventory_entry(self, name: str, workdir: Path, **overrides: object) -> dict[str, object]:
        entry: dict[str, object] = {
            "name": name,
            "host": "127.0.0.1",
            "port": self.port,
            "user": "root",
            "key_file": str(self.user_key),
            "profile": "local",
            "python": sys.executable,
            "workdir": str(workdir),
            "known_hosts": str(self.known_hosts),
        }
        entry.update(overrides)
        return entry

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sshd(directory: Path) -> Sshd:
    directory.mkdir(parents=True, exist_ok=True)
    host_key = keygen(directory / "host_key")
    user_key = keygen(directory / "user_key")
    authorized = directory / "authorized_keys"
    authorized.write_text(user_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {directory / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("sshd did not start")
    key_type, key_data = host_key.with_suffix(".pub").read_text().split()[:2]
    line = f"[127.0.0.1]:{port} {key_type} {key_data}\n"
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(line)
    return Sshd(port, user_key, known_hosts, process, line)
