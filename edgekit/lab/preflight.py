"""What the host needs before `edgekit lab up`: root, binfmt_misc with qemu-aarch64, debootstrap.

Each check is a function of paths and the uid, so tests can point it at fake trees. `missing()`
lists every gap at once; `require()` turns them into one typed error with the apt line.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import MissingPrerequisiteError

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
APT_PACKAGES = ("qemu-user-static", "debootstrap", "binfmt-support")
APT_LINE = "apt-get install -y " + " ".join(APT_PACKAGES)
MOUNT_LINE = f"mount -t binfmt_misc binfmt_misc {BINFMT_DIR}"


@dataclass(frozen=True)
class Gap:
    what: str  # names the missing thing
    fix: str  # the command that fixes it


def binfmt_gap(binfmt_dir: Path = BINFMT_DIR) -> Gap | None:
    """None when qemu-aarch64 is registered and enabled with the F flag (usable inside a chroot)."""
    if not (binfmt_dir / "register").exists():
        return Gap(f"binfmt_misc not mounted at {binfmt_dir}", MOUNT_LINE)
    entry = binfmt_dir / "qemu-aarch64"
    if not entry.is_file():
        return Gap("qemu-aarch64 not registered with binfmt_misc", f"{APT_LINE} && update-binfmts --enable")
    text = entry.read_text()
    if not text.startswith("enabled"):
        return Gap("qemu-aarch64 binfmt entry is disabled", "update-binfmts --enable qemu-aarch64")
    flags = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:")), ""
    )
    if "F" not in flags:
        # Without F the kernel looks the interpreter up inside the chroot, where it does not exist.
        return Gap(
            f"qemu-aarch64 binfmt entry lacks the F (fix binary) flag (flags: {flags or 'none'})",
            "apt-get install -y qemu-user-static (Debian's registers with F)",
        )
    return None


def missing(uid: int | None = None, binfmt_dir: Path = BINFMT_DIR) -> list[Gap]:
    gaps: list[Gap] = []
    if (os.geteuid() if uid is None else uid) != 0:
        gaps.append(Gap("root (debootstrap, chroot and mounts need it)", "run as root"))
    tools = {"debootstrap": "debootstrap", "qemu-aarch64-static": "qemu-user-static"}
    absent = [package for tool, package in tools.items() if shutil.which(tool) is None]
    if absent:
        gaps.append(Gap(" and ".join(absent) + " not installed", APT_LINE))
    gap = binfmt_gap(binfmt_dir)
    if gap is not None:
        gaps.append(gap)
    return gaps


def describe(gaps: list[Gap]) -> str:
    fixes = list(dict.fromkeys(g.fix for g in gaps))
    return "edgekit lab needs: " + "; ".join(g.what for g in gaps) + " (fix: " + " && ".join(fixes) + ")"


def require(uid: int | None = None, binfmt_dir: Path = BINFMT_DIR) -> None:
    gaps = missing(uid, binfmt_dir)
    if gaps:
        raise MissingPrerequisiteError(
            describe(gaps), missing=[g.what for g in gaps], fixes=[g.fix for g in gaps]
        )
