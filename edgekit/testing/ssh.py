"""A real OpenSSH server on 127.0.0.1 for tests and benchmarks: own host key, user key and port.

Public, like edgekit.testing.models: users test their own fleet plans against it. Needs root and
OpenSSH's sshd (apt-get install openssh-server).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edgekit.lab.keys import free_port, keygen

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def sshd_missing_reason() -> str | None:
    if not Path(SSHD).exists():
        return "OpenSSH server not installed (scripts/test installs it when run as root)"
    if os.geteuid() != 0:
        return "the loopback sshd fixture logs in as root"
    return None


@dataclass
class Sshd:
    port: int
    user_key: Path
    known_hosts: Path
    process: subprocess.Popen[bytes]
    host_key_line: str
    address: str = "127.0.0.1"
    log: Path | None = None

    def inventory_entry(self, name: str, workdir: Path, **overrides: object) -> dict[str, object]:
        entry: dict[str, object] = {
            "name": name,
            "host": self.address,
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

    def known_hosts_via(self, path: Path, host: str, port: int) -> Path:
        """A known_hosts file pinning this server's key at another address (a proxy or tunnel in front)."""
        key = self.host_key_line.split(maxsplit=1)[1]
        path.write_text(f"[{host}]:{port} {key}")
        return path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sshd(
    directory: Path,
    *,
    address: str = "127.0.0.1",
    netns: str | None = None,
    extra_config: str = "",
    sftp: bool = True,
) -> Sshd:
    """Start sshd on `address` (inside network namespace `netns` if given); its log goes to sshd.log.

    `extra_config` lines come first, so they win over the defaults (sshd keeps a keyword's first value).
    `sftp=False` leaves out the `Subsystem sftp` line, as minimal board images do."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = keygen(directory / "host_key")
    user_key = keygen(directory / "user_key")
    authorized = directory / "authorized_keys"
    authorized.write_text(user_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"{extra_config}Port {port}\nListenAddress {address}\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        f"PidFile {directory / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        + ("Subsystem sftp internal-sftp\n" if sftp else "")
        + "LogLevel ERROR\n"
    )
    log = directory / "sshd.log"
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    prefix = ["ip", "netns", "exec", netns] if netns else []
    process = subprocess.Popen([*prefix, SSHD, "-D", "-E", str(log), "-f", str(config)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((address, port)) == 0:
                break
        time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("sshd did not start")
    key_type, key_data = host_key.with_suffix(".pub").read_text().split()[:2]
    line = f"[{address}]:{port} {key_type} {key_data}\n"
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(line)
    return Sshd(port, user_key, known_hosts, process, line, address, log)


def write_inventory(path: Path, *entries: dict[str, object]) -> Path:
    """An inventory TOML with one [[device]] table per entry (values written as JSON, which TOML reads)."""
    lines = []
    for entry in entries:
        lines.append("[[device]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in entry.items())
    path.write_text("\n".join(lines) + "\n")
    return path
