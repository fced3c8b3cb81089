"""Start and stop emulated boards: an unpacked aarch64 rootfs whose own sshd serves 127.0.0.1:PORT.

    up:   unpack the cached rootfs -> board sysfs at <root>/sys -> emulation marker -> keys and
          sshd_config -> bind /proc and /dev -> `chroot <root> /usr/sbin/sshd -D` -> wait for the
          port -> inventory entry (host key pinned in the board's own known_hosts)
    down: kill every process whose root is the board's root -> unmount under the board's
          directory -> delete it -> remove the inventory entry

`down` needs nothing but the state file and /proc, so it works after a crash. Nothing outside
`$EDGEKIT_HOME/lab` is ever unmounted or deleted (paths.ensure_inside).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import LabError, UsageError
from edgekit.core.profiles import DeviceProfile, load_profile
from edgekit.lab import preflight
from edgekit.lab.board_sysfs import make_board_sysfs
from edgekit.lab.inventory_edit import remove_device, upsert_device
from edgekit.lab.keys import free_port, keygen
from edgekit.lab.mirror import debian_mirror
from edgekit.lab.mounts import bind, remove_tree
from edgekit.lab.paths import ensure_inside, instance_dir, lab_dir
from edgekit.lab.recipe import RootfsRecipe
from edgekit.lab.rootfs import build_rootfs, unpack_rootfs
from edgekit.lab.state import LabState, pid_alive, read_state, write_state
from edgekit.transport.inventory import default_inventory_path

Progress = Callable[[str], None]
EMULATION_MARKER = "etc/edgekit-emulation.json"  # read by the agent: facts["emulated"]
SSHD_CONFIG = "etc/ssh/edgekit_sshd_config"
BOARD_PYTHON = "/usr/bin/python3"
BOARD_WORKDIR = "/root/.edgekit"
START_TIMEOUT_S = 60.0  # sshd starts under emulation: seconds, not milliseconds
USER_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


@dataclass(frozen=True)
class BoardStatus:
    """One row of `edgekit lab list`."""

    name: str
    profile: str
    port: int | None
    running: bool
    status: str
    inventory: str

    def to_dict(self) -> dict[str, object]:
        return dict(vars(self))


def user_key(explicit: Path | None = None, lab: Path | None = None) -> Path:
    """The private key the board authorises: --key, else the user's usual key, else a lab key."""
    if explicit is not None:
        if not explicit.expanduser().with_name(explicit.name + ".pub").is_file():
            raise UsageError(f"--key {explicit}: no public key {explicit}.pub beside it", key=str(explicit))
        return explicit.expanduser()
    for candidate in USER_KEYS:
        path = Path(candidate).expanduser()
        if path.is_file() and path.with_name(path.name + ".pub").is_file():
            return path
    key = (lab or lab_dir()) / "lab_key"
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        keygen(key)
    return key


def processes_in_root(root: Path, proc: Path = Path("/proc")) -> list[int]:
    """Pids of every process chrooted into `root` (sshd, its sessions, the agents under them)."""
    target = str(Path(root).resolve())
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "root") == target:
                pids.append(int(entry.name))
    return pids


def stop_processes(root: Path, timeout_s: float = 5.0) -> list[int]:
    """SIGTERM everything running in the board, then SIGKILL what is left after `timeout_s`."""
    found = processes_in_root(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_in_root(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and processes_in_root(root):
            time.sleep(0.1)
        if not processes_in_root(root):
            break
    return found


def _qemu_version() -> str | None:
    qemu = shutil.which("qemu-aarch64-static")
    if not qemu:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        first = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10).stdout
        return first.splitlines()[0].strip() if first else None
    return None


def _write_ssh_files(root: Path, port: int, key: Path) -> None:
    """Authorise `key`'s public half for root, make a fresh host key, and write SSHD_CONFIG
    (127.0.0.1:`port`, keys only)."""
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(key.with_name(key.name + ".pub").read_text())
    authorized.chmod(0o600)
    host_key = root / "etc/ssh/ssh_host_ed25519_key"
    for old in (host_key, host_key.with_name(host_key.name + ".pub")):
        old.unlink(missing_ok=True)
    keygen(host_key)
    (root / "run/sshd").mkdir(parents=True, exist_ok=True)
    (root / SSHD_CONFIG).write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
        "AuthorizedKeysFile /root/.ssh/authorized_keys\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nPidFile /run/sshd.pid\n"
        "LogLevel ERROR\n"
    )


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ssh_banner(port: int) -> bytes:
    """The server's first line, or b"" (another program on the port is not the board's sshd)."""
    with socket.socket() as sock:
        sock.settimeout(10)
        try:
            sock.connect(("127.0.0.1", port))
            return sock.recv(64)
        except OSError:
            return b""


def _wait_for_sshd(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once sshd answers with an SSH banner; LabError when it exits (with its log's tail)
    or stays silent for START_TIMEOUT_S seconds."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip()[-300:]
            raise LabError(f"the board's sshd exited ({process.returncode}): {tail}", log=str(log))
        if _ssh_banner(port).startswith(b"SSH-") and process.poll() is None:
            return
        time.sleep(0.2)
    raise LabError(f"the board's sshd did not answer on 127.0.0.1:{port} within {START_TIMEOUT_S:.0f} s")


def _aarch64_profile(profile_name: str) -> DeviceProfile:
    """The profile to emulate; an unknown one fails before anything is built, and a board that is
    not aarch64 is a UsageError."""
    profile = load_profile(profile_name)
    if profile.facts.arch != "aarch64":
        raise UsageError(
            f"profile {profile.name!r} is {profile.facts.arch or 'not an ARM board'}; "
            "edgekit lab emulates aarch64 boards",
            profile=profile.name,
        )
    return profile


def _clear_previous(name: str, directory: Path, inventory: Path | None, progress: Progress) -> None:
    """Refuse a board of this name that is running (UsageError); remove what a stopped or crashed
    one left behind (its inventory entry stays, to be replaced)."""
    existing = read_state(directory)
    if existing is not None and pid_alive(existing.pid) and processes_in_root(Path(existing.root)):
        raise UsageError(
            f"lab board {name!r} is already up on 127.0.0.1:{existing.port} (edgekit lab down {name})",
            name=name,
        )
    if directory.exists():
        progress(f"{name}: removing what a previous run left behind")
        down(name, inventory, keep_inventory=True)


def _write_emulation_marker(root: Path, profile: DeviceProfile) -> None:
    """EMULATION_MARKER in the board (JSON): the emulator, qemu's version, the profile it stands
    for and the host machine; the agent reports it as facts["emulated"]."""
    marker = {
        "emulator": "qemu-user",
        "qemu": _qemu_version(),
        "stands_for": profile.name,
        "host_machine": platform.machine(),
        "note": "timings are not the board's",
    }
    (root / EMULATION_MARKER).write_text(json.dumps(marker) + "\n")


def _bind_mounts(state: LabState, directory: Path, lab: Path) -> None:
    """Bind the host's /proc and /dev into the board's root, recording each in the state file as
    soon as it exists (so `down` unmounts it after a crash)."""
    root = Path(state.root)
    for source in ("/proc", "/dev"):
        state.mounts.append(str(bind(source, root / source.lstrip("/"), lab)))
        write_state(directory, state)


def _start_sshd(state: LabState, directory: Path, port: int) -> None:
    """Start the board's sshd in its chroot (its own session, output in <directory>/sshd.log),
    record its pid, and wait until it answers on `port` with an SSH banner (LabError otherwise)."""
    log = directory / "sshd.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            ["chroot", state.root, "/usr/sbin/sshd", "-D", "-e", "-f", f"/{SSHD_CONFIG}"],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,  # not killed with the terminal that ran `lab up`
        )
    state.pid, state.started_at = process.pid, time.time()
    write_state(directory, state)
    _wait_for_sshd(port, process, log)


def _pin_host_key(state: LabState, directory: Path) -> None:
    """<directory>/known_hosts holding the board's ed25519 host key for [127.0.0.1]:PORT."""
    host_key = (Path(state.root) / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{state.port} {host_key[0]} {host_key[1]}\n")
    state.known_hosts = str(known_hosts)


def _bring_up(
    state: LabState,
    directory: Path,
    lab: Path,
    tarball: Path,
    profile: DeviceProfile,
    *,
    port: int | None,
    key: Path | None,
    progress: Progress,
) -> None:
    """Unpack `tarball`, shape the root like the board, start its sshd on `port` (else a free
    one) and add it to the inventory; each step is recorded in the state file as it happens, so
    `down` can undo a failure."""
    root = Path(state.root)
    progress(f"{state.name}: unpacking {tarball.name}")
    unpack_rootfs(tarball, root)
    make_board_sysfs(root / "sys", profile)
    _write_emulation_marker(root, profile)
    key_path = user_key(key, lab)
    port = port or free_port()
    state.port = port
    state.key_file = str(key_path)
    _write_ssh_files(root, port, key_path)
    _bind_mounts(state, directory, lab)
    progress(f"{state.name}: starting the board's sshd on 127.0.0.1:{port}")
    _start_sshd(state, directory, port)
    _pin_host_key(state, directory)
    upsert_device(Path(state.inventory), inventory_entry(state))
    state.status = "up"
    write_state(directory, state)


def up(
    profile_name: str,
    name: str | None = None,
    port: int | None = None,
    inventory: Path | None = None,
    key: Path | None = None,
    progress: Progress = lambda line: None,
    recipe: RootfsRecipe | None = None,
) -> LabState:
    """Build (once) and start an emulated board for a profile; add it to the inventory.
    UsageError (exit 2) for a profile that is not aarch64, a board already up or a busy port;
    MissingPrerequisiteError (exit 2) naming missing host tools; LabError (exit 3) when the board
    does not start (then it is taken down)."""
    profile = _aarch64_profile(profile_name)
    preflight.require()
    name = name or f"{profile.name}-emu"
    lab = lab_dir()
    directory = instance_dir(name, lab)
    _clear_previous(name, directory, inventory, progress)
    if port is not None and not _port_is_free(port):
        raise UsageError(f"port {port} on 127.0.0.1 is in use; pick another --port or omit it", port=port)
    tarball = build_rootfs(recipe or RootfsRecipe(), debian_mirror(), progress)
    inventory = inventory or default_inventory_path()
    directory.mkdir(parents=True)
    root = directory / "root"
    state = LabState(
        name=name, profile=profile.name, root=str(root), inventory=str(inventory), rootfs=str(tarball)
    )
    write_state(directory, state)  # from here on, `down` can undo whatever happens
    try:
        _bring_up(state, directory, lab, tarball, profile, port=port, key=key, progress=progress)
    except BaseException:
        with contextlib.suppress(Exception):
            down(name, inventory)
        raise
    progress(f"{name}: up on 127.0.0.1:{state.port} (profile {profile.name}, inventory {inventory})")
    return state


def inventory_entry(state: LabState) -> dict[str, object]:
    """The board's [[device]] table: root over SSH on 127.0.0.1:PORT with the pinned host key,
    tagged `lab` and `emulated`."""
    return {
        "name": state.name,
        "host": "127.0.0.1",
        "port": state.port,
        "user": "root",
        "key_file": state.key_file,
        "profile": state.profile,
        "python": BOARD_PYTHON,
        "workdir": BOARD_WORKDIR,
        "known_hosts": state.known_hosts,
        "tags": ["lab", "emulated"],
        "connect_timeout_s": 30,
    }


def down(name: str, inventory: Path | None = None, keep_inventory: bool = False) -> bool:
    """Stop a board and remove all trace of it; False when there was nothing to stop."""
    lab = lab_dir()
    directory = instance_dir(name, lab)
    state = None
    with contextlib.suppress(LabError):  # a state file torn by a crash must not block the cleanup
        state = read_state(directory) if directory.exists() else None
    target_inventory = inventory or (Path(state.inventory) if state else default_inventory_path())
    removed = False if keep_inventory else remove_device(target_inventory, name)
    if not directory.exists():
        return removed
    directory = ensure_inside(directory, lab, "delete")
    root = directory / "root"
    if root.exists():
        stop_processes(root)
    remove_tree(directory, lab)
    return True


def boards() -> list[BoardStatus]:
    """Every board with a state file under the lab directory, by name; `down` when its sshd is gone."""
    lab = lab_dir()
    found = []
    if not lab.is_dir():
        return found
    for directory in sorted(p for p in lab.iterdir() if p.is_dir() and (p / "state.json").is_file()):
        state = read_state(directory)
        if state is None:
            continue
        running = pid_alive(state.pid) and bool(processes_in_root(Path(state.root)))
        found.append(
            BoardStatus(
                state.name,
                state.profile,
                state.port,
                running,
                state.status if running else "down",
                state.inventory,
            )
        )
    return found
