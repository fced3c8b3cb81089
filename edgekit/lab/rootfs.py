"""Build (once) and cache an aarch64 Debian root filesystem with Python, numpy, sshd and the runtimes.

Build: debootstrap from the machine's Debian mirror (the second stage runs under qemu-user),
then the runtimes' aarch64 wheels installed from the host with `pip install --target`, then an
import check inside the chroot. The result is a tarball `rootfs-<recipe key>.tar`, written to a
temporary name and renamed: a half-written tarball is never taken for a whole one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edgekit.core.errors import LabError
from edgekit.core.runlock import run_lock
from edgekit.lab.mounts import bind, remove_tree, unmount_all_under
from edgekit.lab.paths import rootfs_cache_dir
from edgekit.lab.recipe import RootfsRecipe

Progress = Callable[[str], None]
BUILD_WAIT_S = 1800.0
IMPORT_CHECK = (
    "import numpy, onnxruntime; from ai_edge_litert.interpreter import Interpreter; "
    "import platform; print(platform.machine(), onnxruntime.__version__)"
)


def rootfs_tarball(recipe: RootfsRecipe, lab: Path | None = None) -> Path:
    """Where the tarball of `recipe` is cached: <cache>/rootfs-<recipe key>.tar."""
    return (lab or rootfs_cache_dir()) / f"rootfs-{recipe.key()}.tar"


def _run(
    command: list[str], what: str, log: Path, progress: Progress, env: dict[str, str] | None = None
) -> None:
    """Run a build step, its output appended to the build log; a failure names the log's tail."""
    last_report = time.monotonic()
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        sink.flush()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            if time.monotonic() - last_report >= 15 and line.strip():  # a sign of life, not a flood
                progress(f"{what}: {line.strip()[:100]}")
                last_report = time.monotonic()
        code = process.wait()
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise LabError(
            f"{what} failed (exit {code}); log {log}: " + " | ".join(tail), step=what, log=str(log)
        )


def _clean_rootfs(root: Path) -> None:
    """Drop what a board must not share or does not need: package caches and build-time host keys."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages", "etc/ssh/ssh_host_*"):
        for path in root.glob(pattern):
            path.unlink()


def build_rootfs(recipe: RootfsRecipe, mirror: str, progress: Progress, lab: Path | None = None) -> Path:
    """The cached tarball for `recipe`, built first when missing. Needs root, debootstrap and binfmt."""
    lab = lab or rootfs_cache_dir()
    tarball = rootfs_tarball(recipe, lab)
    if tarball.is_file():
        return tarball
    lab.mkdir(parents=True, exist_ok=True)
    # Two `lab up` at once: the second waits for the first's build, then uses its tarball.
    with run_lock(lab / f"rootfs-{recipe.key()}.lock", "the rootfs build", wait_s=BUILD_WAIT_S):
        if tarball.is_file():
            return tarball
        return _build(recipe, mirror, progress, lab, tarball)


def _debootstrap(recipe: RootfsRecipe, root: Path, mirror: str, log: Path, progress: Progress) -> None:
    """Debian `recipe.suite` for `recipe.arch` (minbase plus `recipe.debs`) into `root`."""
    progress(f"debootstrap {recipe.suite} {recipe.arch} ({', '.join(recipe.debs)}) from {mirror}")
    command = [
        "debootstrap",
        f"--arch={recipe.arch}",
        "--variant=minbase",
        f"--include={','.join(recipe.debs)}",
        recipe.suite,
        str(root),
        mirror,
    ]
    _run(command, "debootstrap", log, progress)


def _install_wheels(recipe: RootfsRecipe, root: Path, log: Path, progress: Progress) -> None:
    """The recipe's aarch64 wheels (binary only, no dependencies) into the board's site-packages,
    installed by the host's pip for the board's Python version and platforms."""
    progress(f"aarch64 wheels: {' '.join(recipe.wheels)}")
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        recipe.python_version,
        "--implementation",
        "cp",
        "--target",
        str(root / recipe.site_packages),
    ]
    for platform in recipe.platforms:
        pip += ["--platform", platform]
    _run([*pip, *recipe.wheels], "pip install (aarch64 wheels)", log, progress)


def _pack(root: Path, tarball: Path, log: Path, progress: Progress) -> None:
    """`root` as the tar `tarball` (numeric owners), written to a temporary name, synced, renamed."""
    progress(f"packing {tarball.name}")
    partial = tarball.with_name(f".{tarball.name}.{os.getpid()}.part")
    _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], "tar", log, progress)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, tarball)


def _build(recipe: RootfsRecipe, mirror: str, progress: Progress, lab: Path, tarball: Path) -> Path:
    """Build the rootfs in <lab>/build-<key> (debootstrap, wheels, import check, clean-up), pack it
    as `tarball` and remove the build tree; a failed build leaves no partial tarball."""
    build = lab / f"build-{recipe.key()}"
    if build.exists():  # a build that crashed: it may have left debootstrap's /proc mount behind
        remove_tree(build, lab)
    root = build / "root"
    root.mkdir(parents=True)
    log = build / "build.log"
    started = time.monotonic()
    try:
        _debootstrap(recipe, root, mirror, log, progress)
        _install_wheels(recipe, root, log, progress)
        progress("import check inside the chroot (aarch64 python3 under qemu)")
        _import_check(root, lab, log, progress)
        _clean_rootfs(root)
        _pack(root, tarball, log, progress)
    except BaseException:
        with contextlib.suppress(OSError):
            for stale in lab.glob(f".{tarball.name}.*.part"):
                stale.unlink()
        raise
    else:
        remove_tree(build, lab)
    progress(f"rootfs built in {time.monotonic() - started:.0f} s: {tarball}")
    return tarball


def _import_check(root: Path, lab: Path, log: Path, progress: Progress) -> None:
    """Import numpy, onnxruntime and the LiteRT interpreter with the board's python3 (under qemu),
    /proc bound for the duration."""
    bind("/proc", root / "proc", lab)
    try:
        _run(["chroot", str(root), "python3", "-c", IMPORT_CHECK], "import check", log, progress)
    finally:
        unmount_all_under(root / "proc", lab)


def unpack_rootfs(tarball: Path, target: Path) -> None:
    """Unpack `tarball` into a new directory `target` (numeric owners); LabError when tar fails."""
    target.mkdir(parents=True)
    done = subprocess.run(
        ["tar", "-C", str(target), "--numeric-owner", "-xf", str(tarball)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise LabError(f"cannot unpack {tarball}: {done.stderr.strip()[-300:]}", tarball=str(tarball))
