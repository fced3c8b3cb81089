"""SSH devices on paramiko: strict host keys, the agent uploaded by content hash, artifacts pushed by sha256.

Layout on the board, under the device's workdir:

    agent-<sha256>.py              the agent, uploaded only when that exact file is missing
    artifacts/<sha256><ext>        models, verified by hash on the board before reuse

Uploads go to a temporary name, are hashed on the board, then renamed: a half-written file is
never taken for a whole one. Every remote command is built with shlex.quote.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from pathlib import Path
from typing import Any

import paramiko

from edgekit.artifacts import sha256_file
from edgekit.errors import DeviceError
from edgekit.inventory import SshTarget
from edgekit.resources import agent_path
from edgekit.transport.base import StagedFile
from edgekit.transport.lines import QueuedLineChannel

KEEPALIVE_S = 15
UPLOAD_CHUNK_BYTES = 1 << 20
CONNECT_ATTEMPTS = 3  # transient failures only: timeouts and resets, not refusals or auth
COMMAND_TIMEOUT_S = 120.0
# Runs on the board with its Python: prints the expanded workdir and the interpreter version.
_PROBE = "import os, sys; print(os.path.expanduser(sys.argv[1])); print('%d.%d' % sys.version_info[:2])"
_SHA256 = (
    "import hashlib, sys\n"
    "h = hashlib.sha256()\n"
    "try:\n"
    "    f = open(sys.argv[1], 'rb')\n"
    "except OSError:\n"
    "    sys.exit(3)\n"
    "for chunk in iter(lambda: f.read(1 << 20), b''):\n"
    "    h.update(chunk)\n"
    "print(h.hexdigest())\n"
)


def _ssh_config(host: str) -> dict[str, Any]:
    """The ~/.ssh/config entry for a host alias (HostName, Port, User, IdentityFile, ProxyCommand)."""
    path = Path("~/.ssh/config").expanduser()
    if not path.is_file():
        return {}
    config = paramiko.SSHConfig.from_path(str(path))
    return dict(config.lookup(host))


class SshTransport:
    def __init__(self, target: SshTarget) -> None:
        self.device_name = target.name
        self.target = target
        self._client = self._connect()
        self.workdir, self.python_version = self._probe()
        major, minor = (int(v) for v in self.python_version.split("."))
        if (major, minor) < (3, 8):
            self.close()
            raise DeviceError(
                f"device {self.device_name!r}: {target.python} is Python {self.python_version}; "
                "the agent needs >= 3.8",
                device=self.device_name,
            )
        self._sftp = self._client.open_sftp()

    # -- connection -------------------------------------------------------------------------------

    def _fail(self, what: str) -> DeviceError:
        return DeviceError(f"device {self.device_name!r}: {what}", device=self.device_name)

    def _connect(self) -> paramiko.SSHClient:
        target = self.target
        config = _ssh_config(target.host)
        client = paramiko.SSHClient()
        known_hosts = Path(target.known_hosts).expanduser()
        if known_hosts.is_file():
            client.load_host_keys(str(known_hosts))
        if target.host_key_policy == "accept-new":
            known_hosts.parent.mkdir(parents=True, exist_ok=True)
            known_hosts.touch(exist_ok=True)
            client.load_host_keys(str(known_hosts))  # new keys are saved here, then pinned
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        hostname = config.get("hostname", target.host)
        port = target.port or int(config.get("port", 22))
        sock = paramiko.ProxyCommand(config["proxycommand"]) if "proxycommand" in config else None
        key_file = target.key_file or (config.get("identityfile") or [None])[0]
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                username = target.user or config.get("user")
                return self._connect_once(client, hostname, port, username, key_file, sock, known_hosts)
            except (TimeoutError, ConnectionResetError, EOFError) as exc:
                if attempt == CONNECT_ATTEMPTS:
                    raise self._fail(
                        f"unreachable at {hostname}:{port} after {attempt} attempts ({exc})"
                    ) from None
                time.sleep(2 ** (attempt - 1))  # 1 s, 2 s: transient network trouble only
        raise AssertionError("unreachable")

    def _connect_once(
        self,
        client: paramiko.SSHClient,
        hostname: str,
        port: int,
        username: str | None,
        key_file: str | None,
        sock: paramiko.ProxyCommand | None,
        known_hosts: Path,
    ) -> paramiko.SSHClient:
        target = self.target
        try:
            client.connect(
                hostname,
                port=port,
                username=username,
                key_filename=str(Path(key_file).expanduser()) if key_file else None,
                timeout=target.connect_timeout_s,
                auth_timeout=target.connect_timeout_s,
                banner_timeout=target.connect_timeout_s,
                sock=sock,
                allow_agent=key_file is None,
                look_for_keys=key_file is None,
            )
        except paramiko.BadHostKeyException:
            raise self._fail(
                f"host key of {hostname}:{port} does not match {known_hosts} (possible man-in-the-middle; "
                "if the board was reinstalled, remove its old key)"
            ) from None
        except paramiko.AuthenticationException:
            raise self._fail(f"authentication failed for {username or ''}@{hostname}:{port}") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise self._fail(
                    f"{hostname}:{port} is not in {known_hosts}; add its key (ssh-keyscan) or set "
                    'host_key_policy = "accept-new" in the inventory'
                ) from None
            raise self._fail(f"SSH error: {exc}") from None
        except (TimeoutError, ConnectionResetError, EOFError):
            raise  # transient: _connect retries with backoff
        except OSError as exc:
            raise self._fail(f"unreachable at {hostname}:{port} ({exc.strerror or exc})") from None
        if target.host_key_policy == "accept-new":
            client.save_host_keys(str(known_hosts))
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_S)
        return client

    def _run(self, argv: list[str], timeout_s: float = COMMAND_TIMEOUT_S) -> tuple[int, str, str]:
        command = " ".join(shlex.quote(part) for part in argv)
        try:
            _, stdout, stderr = self._client.exec_command(command, timeout=timeout_s)
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            return stdout.channel.recv_exit_status(), out, err
        except (TimeoutError, paramiko.SSHException, OSError) as exc:
            raise self._fail(f"connection lost running {argv[0]}: {exc}") from None

    def _probe(self) -> tuple[str, str]:
        code, out, err = self._run([self.target.python, "-c", _PROBE, self.target.workdir])
        if code != 0:
            raise self._fail(
                f"cannot run {self.target.python!r} on the board (exit {code}): "
                f"{err.strip()[-200:] or out.strip()}"
            )
        lines = out.strip().splitlines()
        return lines[0], lines[1]

    # -- files ------------------------------------------------------------------------------------

    def _remote_sha256(self, path: str) -> str | None:
        code, out, _ = self._run([self.target.python, "-c", _SHA256, path])
        return out.strip() if code == 0 else None

    def _mkdirs(self, path: str) -> None:
        code, _, err = self._run(["mkdir", "-p", "--", path])
        if code != 0:
            raise self._fail(f"cannot create {path} on the board: {err.strip()}")

    def _push(self, local: Path, remote: str, sha256: str) -> StagedFile:
        """Content-addressed upload: reuse a verified copy; else append to `<name>.part` (an interrupted
        upload resumes where it stopped), verify the hash on the board, rename atomically."""
        if self._remote_sha256(remote) == sha256:
            return StagedFile(remote, bytes_sent=0, skipped_cached=True, method="ssh")
        self._mkdirs(remote.rsplit("/", 1)[0])
        partial = f"{remote}.part"
        size = local.stat().st_size
        try:
            offset = self._sftp.stat(partial).st_size or 0
        except OSError:
            offset = 0
        if offset > size:
            offset = 0
        try:
            with local.open("rb") as source, self._sftp.open(partial, "ab" if offset else "wb") as target:
                target.set_pipelined(True)
                source.seek(offset)
                while chunk := source.read(UPLOAD_CHUNK_BYTES):
                    target.write(chunk)
        except OSError as exc:
            raise self._fail(
                f"upload of {local.name} failed ({exc}); is the board's disk full? "
                f"{partial} is kept to resume, never used as a whole file"
            ) from None
        if self._remote_sha256(partial) != sha256:
            with contextlib.suppress(OSError):
                self._sftp.remove(partial)
            raise self._fail(f"upload of {local.name} arrived corrupted (sha256 mismatch); removed")
        self._sftp.posix_rename(partial, remote)
        return StagedFile(remote, bytes_sent=size - offset, skipped_cached=False, method="ssh")

    def stage_file(self, path: Path, sha256: str) -> StagedFile:
        return self._push(path, f"{self.workdir}/artifacts/{sha256}{path.suffix}", sha256)

    # -- agent ------------------------------------------------------------------------------------

    def start_agent(self) -> QueuedLineChannel:
        local = agent_path()
        digest = sha256_file(local)
        remote = f"{self.workdir}/agent-{digest}.py"
        self._push(local, remote, digest)
        command = " ".join(shlex.quote(p) for p in (self.target.python, remote, "--workdir", self.workdir))
        try:
            channel = self._client.get_transport().open_session()  # type: ignore[union-attr]
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, AttributeError) as exc:
            raise self._fail(f"cannot start the agent: {exc}") from None
        stdout, stderr = channel.makefile("rb"), channel.makefile_stderr("rb")

        def write(data: bytes) -> None:
            channel.sendall(data)

        def close() -> None:
            with contextlib.suppress(OSError, paramiko.SSHException):
                channel.shutdown_write()
                channel.recv_exit_status()
            channel.close()

        return QueuedLineChannel(self.device_name, stdout, stderr, write, close)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._sftp.close()
        self._client.close()
