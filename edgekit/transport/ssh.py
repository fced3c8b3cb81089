"""SSH devices on paramiko: strict host keys, the agent uploaded by content hash, artifacts pushed by sha256.

Layout on the board, under the device's workdir:

    agent-<sha256>.pyz             the agent zipapp (edgekit/transport/agent_bundle.py), uploaded
                                   only when that exact file is missing
    artifacts/<sha256><ext>        models in one file, verified by hash on the board before reuse
    artifacts/<sha256>/<model file> + <location>...
                                   a model with external data (sha256 = the artifact's, see
                                   edgekit.core.artifacts.artifact_sha256): its data files sit
                                   next to it under the names its `location`s give, each file
                                   verified by its own hash before reuse

Uploads go to a temporary name (`<name>.part`), are hashed on the board, then renamed: a
half-written file is never taken for a whole one. The bytes travel over SFTP, or, when the board's
sshd has no SFTP subsystem (minimal images, appliances), over an exec channel into
board_stage.py's `receive` (same .part file, same hash check and rename, same resume and reuse).
Every remote command is built with shlex.quote.

paramiko logs its transport thread's failures, tracebacks included, to the `paramiko` logger;
this module gives that logger a NullHandler and stops its records at it (EDGEKIT_DEBUG set keeps
them flowing to the root logger), so each failure reaches the user once, as edgekit's own
one-line DeviceError.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from edgekit.core.artifacts import Artifact
from edgekit.core.errors import ConfigError, DeviceError
from edgekit.transport.agent_bundle import build_agent_bundle
from edgekit.transport.base import StagedFile
from edgekit.transport.inventory import SshTarget, parse_jump_spec
from edgekit.transport.lines import QueuedLineChannel

KEEPALIVE_S = 15
# AES-GCM needs no separate MAC pass: paramiko pushes about 1.7x faster with it than with its default
# aes128-ctr + HMAC (measured on loopback). Preferred when the server offers it, else the usual order.
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
SFTP_WINDOW_BYTES = 32 << 20  # a wide window keeps pipelined writes flowing on high-latency links
UPLOAD_CHUNK_BYTES = 1 << 20
CONNECT_ATTEMPTS = 3  # transient failures only: timeouts and resets, not refusals or auth
COMMAND_TIMEOUT_S = 120.0
_BOARD_STAGE = (Path(__file__).parent / "board_stage.py").read_text()  # sent with `python -c`
_KEY_TYPES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)  # as paramiko tries them
BANNER_SHOWN_CHARS = 60  # of a non-SSH server's first line, in the error


def _quiet_paramiko() -> None:
    """Keep paramiko's log records (its transport thread logs every failure with a traceback at
    ERROR) off the terminal: Python prints unhandled ERROR records on stderr otherwise."""
    log = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    log.propagate = bool(os.environ.get("EDGEKIT_DEBUG"))


_quiet_paramiko()


DEFAULT_SSH_CONFIG = "~/.ssh/config"


def ssh_config_entry(host: str, path: str = DEFAULT_SSH_CONFIG) -> dict[str, Any]:
    """The ssh_config entry for a host alias (HostName, Port, User, IdentityFile, ProxyJump,
    ProxyCommand); {} when the default ~/.ssh/config does not exist. Raises ConfigError (exit 2)
    when a file the device names (its `ssh_config`) does not exist."""
    config_path = Path(path).expanduser()
    if not config_path.is_file():
        if path != DEFAULT_SSH_CONFIG:
            raise ConfigError(f"ssh_config {path}: no such file", path=path)
        return {}
    return dict(paramiko.SSHConfig.from_path(str(config_path)).lookup(host))


@dataclass(frozen=True)
class Hop:
    """One SSH server on the way to a board: a bastion, or the board itself (the last hop)."""

    alias: str
    hostname: str
    port: int
    user: str | None
    key_file: str | None


class _FirstBytes:
    """The socket (or channel, or ProxyCommand) paramiko reads from, keeping the first bytes the
    server sent: when no SSH banner came, they name what answered instead."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.head = b""
        self.hung_up = False  # the server closed the connection

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        self.hung_up = self.hung_up or not data
        if len(self.head) < 256:
            self.head += data[: 256 - len(self.head)]
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _GcmFirstTransport:
    """paramiko's transport_factory: GCM ciphers first, and the transport and first bytes kept."""

    def __init__(self) -> None:
        self.transport: paramiko.Transport | None = None
        self.sock: _FirstBytes | None = None

    def __call__(self, sock: Any, **kwargs: Any) -> paramiko.Transport:
        self.sock = _FirstBytes(sock)
        self.transport = transport = paramiko.Transport(self.sock, **kwargs)
        options = transport.get_security_options()
        fast = [c for c in FAST_CIPHERS if c in options.ciphers]
        options.ciphers = tuple(fast + [c for c in options.ciphers if c not in fast])
        return transport

    def no_banner(self, timeout_s: float) -> str | None:
        """What answered instead of an SSH server, or None when an SSH banner did arrive."""
        if self.transport is None or self.sock is None or self.transport.remote_version:
            return None
        lines = self.sock.head.decode("utf-8", "replace").splitlines()
        if any(line.startswith("SSH-") for line in lines):
            return None  # a banner that paramiko rejected: its own message says why
        if not lines and self.sock.hung_up:
            return "not an SSH server: it closed the connection without a banner"
        if not lines:
            return f"no SSH banner within {timeout_s:g} s"
        first = lines[0].strip()
        shown = first[:BANNER_SHOWN_CHARS] + ("…" if len(first) > BANNER_SHOWN_CHARS else "")
        return f"not an SSH server: got {shown!r}"


class SshTransport:
    def __init__(self, target: SshTarget) -> None:
        self.device_name = target.name
        self.target = target
        self._jumps: list[paramiko.SSHClient] = []  # bastions, closed with the board's connection
        self._client = self._connect()
        self._start_stager()
        major, minor = (int(v) for v in self.python_version.split("."))
        if (major, minor) < (3, 8):
            self.close()
            raise DeviceError(
                f"device {self.device_name!r}: {target.python} is Python {self.python_version}; "
                "the agent needs >= 3.8",
                device=self.device_name,
            )
        self._sftp = self._open_sftp()

    def _open_sftp(self) -> paramiko.SFTPClient | None:
        """An SFTP session, or None when the board's sshd has no SFTP subsystem (uploads then go
        over exec channels, see _send_exec)."""
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            self.close()
            raise self._fail("connection lost before SFTP could start")
        try:
            return paramiko.SFTPClient.from_transport(transport, window_size=SFTP_WINDOW_BYTES)
        except (paramiko.SSHException, EOFError):  # sshd closes the channel it cannot serve
            if not transport.is_active():
                self.close()
                raise self._fail("connection lost while opening SFTP") from None
            return None

    # -- connection -------------------------------------------------------------------------------

    def _fail(self, what: str) -> DeviceError:
        return DeviceError(f"device {self.device_name!r}: {what}", device=self.device_name)

    def _hop(self, alias: str, user: str | None, port: int | None) -> Hop:
        config = ssh_config_entry(alias, self.target.ssh_config)
        return Hop(
            alias,
            config.get("hostname", alias),
            port or int(config.get("port", 22)),
            user or config.get("user"),  # like OpenSSH: not the board's user; None = the local user
            (config.get("identityfile") or [self.target.key_file])[0],  # the board's key unless configured
        )

    def route(self) -> tuple[list[Hop], Hop, str | None]:
        """Bastions (ProxyJump, from the inventory or ssh_config), the board, and a ProxyCommand if any."""
        target = self.target
        config = ssh_config_entry(target.host, target.ssh_config)
        board = Hop(
            target.host,
            config.get("hostname", target.host),
            target.port or int(config.get("port", 22)),
            target.user or config.get("user"),
            target.key_file or (config.get("identityfile") or [None])[0],
        )
        jump = target.proxy_jump or config.get("proxyjump")
        if jump and jump.lower() != "none":
            return [self._hop(host, user, port) for user, host, port in parse_jump_spec(jump)], board, None
        return [], board, config.get("proxycommand")

    def _connect(self) -> paramiko.SSHClient:
        bastions, board, proxy_command = self.route()
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                sock: Any = paramiko.ProxyCommand(proxy_command) if proxy_command else None
                for index, hop in enumerate(bastions):
                    client = self._connect_once(hop, sock, via=f" (bastion {hop.alias!r})")
                    self._jumps.append(client)
                    sock = self._forward(client, hop, ([*bastions[index + 1 :], board])[0])
                return self._connect_once(board, sock, via=f" via {bastions[-1].alias!r}" if bastions else "")
            except (TimeoutError, ConnectionResetError, EOFError) as exc:
                self._close_jumps()
                if attempt == CONNECT_ATTEMPTS:
                    raise self._fail(
                        f"unreachable at {board.hostname}:{board.port} after {attempt} attempts ({exc})"
                    ) from None
                time.sleep(2 ** (attempt - 1))  # 1 s, 2 s: transient network trouble only
            except DeviceError:
                self._close_jumps()
                raise
        raise AssertionError("unreachable")

    def _forward(self, bastion: paramiko.SSHClient, hop: Hop, to: Hop) -> paramiko.Channel:
        try:
            return bastion.get_transport().open_channel(  # type: ignore[union-attr]
                "direct-tcpip", (to.hostname, to.port), ("127.0.0.1", 0)
            )
        except (paramiko.SSHException, OSError) as exc:
            raise self._fail(
                f"bastion {hop.alias!r} could not open a connection to {to.hostname}:{to.port} ({exc}; "
                "is AllowTcpForwarding enabled there and the board reachable from it?)"
            ) from None

    def _connect_once(self, hop: Hop, sock: Any, via: str) -> paramiko.SSHClient:
        target = self.target
        known_hosts = Path(target.known_hosts).expanduser()
        client = paramiko.SSHClient()
        if known_hosts.is_file():
            client.load_host_keys(str(known_hosts))
        if target.host_key_policy == "accept-new":
            known_hosts.parent.mkdir(parents=True, exist_ok=True)
            known_hosts.touch(exist_ok=True)
            client.load_host_keys(str(known_hosts))  # new keys are saved here, then pinned
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        where = f"{hop.hostname}:{hop.port}{via}"
        factory = _GcmFirstTransport()
        key_file = str(Path(hop.key_file).expanduser()) if hop.key_file else None
        passphrase = os.environ.get(target.passphrase_env) if target.passphrase_env else None
        if key_file is not None:
            self._check_key(key_file, passphrase or None)
        try:
            client.connect(
                hop.hostname,
                port=hop.port,
                username=hop.user,
                key_filename=key_file,
                passphrase=passphrase or None,
                timeout=target.connect_timeout_s,
                auth_timeout=target.connect_timeout_s,
                banner_timeout=target.connect_timeout_s,
                sock=sock,
                transport_factory=factory,
                allow_agent=hop.key_file is None,
                look_for_keys=hop.key_file is None,
            )
        except paramiko.BadHostKeyException:
            raise self._fail(
                f"host key of {where} does not match {known_hosts} (possible man-in-the-middle; "
                "if the board was reinstalled, remove its old key)"
            ) from None
        except paramiko.BadAuthenticationType as exc:
            allowed = ", ".join(exc.allowed_types) or "none"
            raise self._fail(
                f"authentication failed for {hop.user or ''}@{where}: the server refuses public-key "
                f"logins (it allows: {allowed}); edgekit logs in with keys only"
            ) from None
        except paramiko.AuthenticationException:
            raise self._fail(f"authentication failed for {hop.user or ''}@{where}") from None
        except paramiko.SSHException as exc:
            client.close()
            found = factory.no_banner(target.connect_timeout_s)
            if found is not None:
                raise self._fail(f"{where}: {found}") from None
            if "not found in known_hosts" in str(exc):
                raise self._fail(
                    f"{where} is not in {known_hosts}; add its key (ssh-keyscan) or set "
                    'host_key_policy = "accept-new" in the inventory'
                ) from None
            raise self._fail(f"SSH error at {where}: {exc}") from None
        except (TimeoutError, ConnectionResetError, EOFError):
            client.close()
            raise  # transient: _connect retries with backoff
        except OSError as exc:
            raise self._fail(f"unreachable at {where} ({exc.strerror or exc})") from None
        if target.host_key_policy == "accept-new":
            client.save_host_keys(str(known_hosts))
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_S)
        return client

    def _check_key(self, key_file: str, passphrase: str | None) -> None:
        """Fail before connecting, in one line, on a private key paramiko cannot use: unreadable,
        encrypted with no passphrase available (no prompt: edgekit runs without a terminal), or
        not decryptable with the one given (the inventory's `passphrase_env` names its variable)."""
        env = self.target.passphrase_env
        for kind in _KEY_TYPES:
            try:
                kind.from_private_key_file(key_file, password=passphrase)
                return
            except paramiko.PasswordRequiredException:
                raise self._fail(
                    f"the private key {key_file} is encrypted and no passphrase is available "
                    f"({f'${env} is unset' if env else 'the inventory sets no passphrase_env'}); set "
                    "passphrase_env to a variable holding it, or load the key into ssh-agent and "
                    "leave key_file out"
                ) from None
            except OSError as exc:
                raise self._fail(f"cannot read the private key {key_file} ({exc.strerror or exc})") from None
            except (paramiko.SSHException, ValueError, TypeError, IndexError):
                continue  # another key type, or a wrong passphrase: known after all types
        if passphrase:
            raise self._fail(f"cannot decrypt the private key {key_file} with ${env} (wrong passphrase?)")
        raise self._fail(f"{key_file} is not a private key edgekit can use (RSA, ECDSA or Ed25519)")

    def _close_jumps(self) -> None:
        for client in reversed(self._jumps):
            client.close()
        self._jumps.clear()

    def _start_stager(self) -> None:
        """board_stage.py on the board: reports the workdir and Python version, then stages files."""
        command = " ".join(
            shlex.quote(p) for p in (self.target.python, "-c", _BOARD_STAGE, "serve", self.target.workdir)
        )
        try:
            self._stager = self._client.get_transport().open_session()  # type: ignore[union-attr]
            self._stager.settimeout(COMMAND_TIMEOUT_S)
            self._stager.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise self._fail(f"cannot run commands on the board: {exc or type(exc).__name__}") from None
        self._stager_out = self._stager.makefile("rb")
        hello = self._stager_reply("start")
        if hello is None:
            code = self._stager.recv_exit_status()
            err = self._stager.makefile_stderr("rb").read().decode("utf-8", "replace").strip()
            raise self._fail(f"cannot run {self.target.python!r} on the board (exit {code}): {err[-200:]}")
        self.workdir, self.python_version = str(hello["workdir"]), str(hello["python"])

    def _stager_reply(self, what: str) -> dict[str, Any] | None:
        try:
            line = self._stager_out.readline()
        except (TimeoutError, OSError, EOFError, paramiko.SSHException) as exc:
            raise self._fail(f"connection lost during {what}: {exc or type(exc).__name__}") from None
        if not line:
            return None
        try:
            reply = json.loads(line)
        except ValueError:
            raise self._fail(f"unexpected output from the board during {what}: {line[:200]!r}") from None
        return reply if isinstance(reply, dict) else None

    # -- files ------------------------------------------------------------------------------------

    def _stage_step(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request to the board's stager (check or commit): a JSON line each way."""
        what = f"{op} of {Path(str(fields.get('path', ''))).name}"
        try:
            self._stager.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
        except (TimeoutError, OSError, EOFError, paramiko.SSHException) as exc:
            raise self._fail(f"connection lost during {what}: {exc or type(exc).__name__}") from None
        reply = self._stager_reply(what)
        if reply is None:
            raise self._fail(f"connection lost during {what}")
        if "error" in reply:
            raise self._fail(f"cannot stage files in {self.workdir}: {reply['error']}")
        return reply

    def _push(self, local: Path, remote: str, sha256: str) -> StagedFile:
        """Content-addressed upload: reuse a verified copy; else append to `<name>.part` (an interrupted
        upload resumes where it stopped), verify the hash on the board, rename atomically. Two SSH
        round trips around the transfer itself, whatever the state on the board."""
        state = self._stage_step("check", path=remote, sha256=sha256)
        if state["cached"]:
            return StagedFile(remote, bytes_sent=0, skipped_cached=True, method="ssh")
        partial = f"{remote}.part"
        size = local.stat().st_size
        offset = int(state["part_bytes"])
        if offset > size:
            offset = 0
        if int(state["free_bytes"]) < size - offset:
            raise self._disk_full(
                local.name, size - offset, int(state["free_bytes"]), "checked before sending"
            )
        try:
            if self._sftp is not None:
                self._send_sftp(local, partial, offset)
            else:
                self._send_exec(local, partial, offset)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._upload_failure(
                local.name, partial, size - offset, str(exc) or type(exc).__name__
            ) from None
        outcome = self._stage_step("commit", path=remote, sha256=sha256, size=size)
        if not outcome["ok"]:
            arrived = int(outcome["part_bytes"])
            if arrived < size:  # pipelined writes can fail silently (ENOSPC): the size tells
                raise self._upload_failure(
                    local.name, partial, size - offset, f"{arrived} of {size} bytes arrived"
                )
            raise self._fail(f"upload of {local.name} arrived corrupted (sha256 mismatch); removed")
        return StagedFile(remote, bytes_sent=size - offset, skipped_cached=False, method="ssh")

    def _send_sftp(self, local: Path, partial: str, offset: int) -> None:
        """local's bytes from `offset` on, appended to `partial` on the board (pipelined SFTP writes)."""
        assert self._sftp is not None
        with local.open("rb") as source, self._sftp.open(partial, "ab" if offset else "wb") as target:
            target.set_pipelined(True)
            source.seek(offset)
            while chunk := source.read(UPLOAD_CHUNK_BYTES):
                target.write(chunk)
        # paramiko's SFTPFile.close() swallows the errors of a channel that died under pipelined
        # writes: a link cut during the transfer would otherwise surface only at the commit step.
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise EOFError("the connection closed during the transfer")

    def _send_exec(self, local: Path, partial: str, offset: int) -> None:
        """As _send_sftp, without SFTP: the bytes stream into board_stage.py `receive` on an exec
        channel's stdin. Raises OSError with the board's reason when it could not write them all."""
        command = " ".join(
            shlex.quote(p) for p in (self.target.python, "-c", _BOARD_STAGE, "receive", partial, str(offset))
        )
        channel = self._client.get_transport().open_session()  # type: ignore[union-attr]
        try:
            channel.settimeout(COMMAND_TIMEOUT_S)
            channel.exec_command(command)
            with local.open("rb") as source:
                source.seek(offset)
                while chunk := source.read(UPLOAD_CHUNK_BYTES):
                    channel.sendall(chunk)
            channel.shutdown_write()
            line = channel.makefile("rb").readline()
        finally:
            channel.close()
        if not line:
            raise OSError("the board's receiver exited without an answer")
        try:
            reply = json.loads(line)
        except ValueError:
            raise OSError(f"the board's receiver answered {line[:200]!r}") from None
        if "error" in reply:
            raise OSError(str(reply["error"]))

    def _remove(self, path: str) -> None:
        with contextlib.suppress(DeviceError):
            self._stage_step("remove", path=path)

    def _disk_full(self, name: str, needed: int, free: int, reason: str) -> DeviceError:
        return self._fail(
            f"the board's disk is full: {name} needs {needed / 2**20:.1f} MiB, "
            f"{free / 2**20:.1f} MiB free under {self.workdir} ({reason})"
        )

    def _upload_failure(self, name: str, partial: str, needed: int, reason: str) -> DeviceError:
        """Tell a dropped link from a full disk: ask the board (a dead connection cannot answer)."""
        try:
            free = int(
                self._stage_step("check", path=partial.removesuffix(".part"), sha256="-")["free_bytes"]
            )
        except DeviceError:
            return self._fail(
                f"connection lost during the upload of {name} ({reason}); the next run resumes from {partial}"
            )
        if free < needed:
            self._remove(partial)  # give the board its space back; a half file is never used anyway
            return self._disk_full(name, needed, free, f"{reason}; the partial upload was removed")
        return self._fail(f"upload of {name} failed ({reason}); {partial} is kept to resume")

    def stage_file(self, path: Path, sha256: str) -> StagedFile:
        return self._push(path, f"{self.workdir}/artifacts/{sha256}{path.suffix}", sha256)

    def stage_artifact(self, artifact: Artifact) -> StagedFile:
        """One-file artifacts as `stage_file`; with external data, every file into the directory
        `artifacts/<artifact sha256>/`, each pushed (or reused) by its own hash."""
        if not artifact.has_external_data:
            return self.stage_file(artifact.path, artifact.sha256)
        directory = f"{self.workdir}/artifacts/{artifact.sha256}"
        staged = [self._push(f.path, f"{directory}/{f.name}", f.sha256) for f in artifact.files]
        return StagedFile(
            staged[0].remote_path,
            bytes_sent=sum(s.bytes_sent for s in staged),
            skipped_cached=all(s.skipped_cached for s in staged),
            method="ssh",
        )

    # -- agent ------------------------------------------------------------------------------------

    def start_agent(self) -> QueuedLineChannel:
        bundle = build_agent_bundle()
        remote = f"{self.workdir}/{bundle.name}"
        self._push(bundle.path, remote, bundle.sha256)  # skipped when the board has these bytes
        command = " ".join(shlex.quote(p) for p in (self.target.python, remote, "--workdir", self.workdir))
        try:
            channel = self._client.get_transport().open_session()  # type: ignore[union-attr]
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, AttributeError) as exc:
            raise self._fail(f"cannot start the agent: {exc}") from None
        stdout, stderr = channel.makefile("rb"), channel.makefile_stderr("rb")

        def write(data: bytes) -> None:
            channel.sendall(data)

        def close() -> None:  # never raises: a dead link must not hide the error that killed it
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                channel.shutdown_write()
                channel.recv_exit_status()
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                channel.close()

        return QueuedLineChannel(self.device_name, stdout, stderr, write, close)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._sftp is not None:
                self._sftp.close()
        with contextlib.suppress(Exception):
            self._stager.close()
        self._client.close()
        self._close_jumps()
