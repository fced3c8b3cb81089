"""Where the lab keeps its files, and the one check that guards every unmount and delete.

$EDGEKIT_HOME/lab/
    rootfs-<key>.tar        cached root filesystems (written atomically)
    build-<key>/            a build in progress (removed when done)
    lab_key, lab_key.pub    the user key boards authorise when the user has none of their own
    <name>/state.json       one board: pid, port, mounts, paths
    <name>/root/            its unpacked root filesystem
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgekit.core.errors import LabError, UsageError
from edgekit.core.resources import edgekit_home

CACHE_ENV = "EDGEKIT_LAB_CACHE"  # where rootfs tarballs are kept, if not in the lab directory
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def lab_dir() -> Path:
    return edgekit_home() / "lab"


def rootfs_cache_dir() -> Path:
    """Cached rootfs tarballs: $EDGEKIT_LAB_CACHE (a CI cache, shared by test runs), else the lab dir."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else lab_dir()


def check_name(name: str) -> str:
    """Board names become directory names: letters, digits, '.', '_', '-' only; no path tricks."""
    if not NAME_PATTERN.match(name) or name in (".", "..") or name.startswith(("rootfs-", "build-")):
        raise UsageError(
            f"lab board name {name!r}: use letters, digits, '.', '_' and '-' (not starting with "
            "'rootfs-' or 'build-')",
            name=name,
        )
    return name


def instance_dir(name: str, base: Path | None = None) -> Path:
    return (base or lab_dir()) / check_name(name)


def inside(path: Path, base: Path) -> bool:
    """True when `path` is strictly below `base` after resolving symlinks and '..'."""
    resolved, root = Path(path).resolve(), Path(base).resolve()
    return resolved != root and root in resolved.parents


def ensure_inside(path: Path, base: Path, what: str) -> Path:
    """The lab never unmounts or deletes outside its own directory: refuse anything else loudly."""
    if not inside(path, base):
        raise LabError(f"refusing to {what} {path}: it is not inside {base}", path=str(path), lab=str(base))
    return Path(path).resolve()
