"""Loopback ports and SSH keys for boards run on this machine (`edgekit lab`, and the test sshd)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it; int, 1024-65535)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path) -> Path:
    """An unencrypted ed25519 key pair at `path` and `path.pub` (OpenSSH's ssh-keygen).

    Raises subprocess.CalledProcessError when ssh-keygen fails."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path
