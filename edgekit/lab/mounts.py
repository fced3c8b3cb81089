"""Bind mounts for a board's chroot, found again from /proc/self/mounts after a crash."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from edgekit.core.errors import LabError
from edgekit.lab.paths import ensure_inside

MOUNTS_FILE = Path("/proc/self/mounts")


def _unescape(field: str) -> str:
    """/proc/self/mounts writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mount_points(text: str) -> list[str]:
    """Mount points from /proc/self/mounts text, in mount order (pure)."""
    points = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            points.append(_unescape(fields[1]))
    return points


def mounts_under(path: Path, mounts_text: str | None = None) -> list[Path]:
    """Mount points at or below `path`, deepest first (the order to unmount them in)."""
    text = MOUNTS_FILE.read_text() if mounts_text is None else mounts_text
    root = str(Path(path).resolve())
    found = [Path(p) for p in parse_mount_points(text) if p == root or p.startswith(root + "/")]
    return sorted(dict.fromkeys(found), key=lambda p: len(p.parts), reverse=True)


def bind(source: str, target: Path, lab: Path) -> Path:
    ensure_inside(target, lab, "mount on")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "--bind", source, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"mount --bind {source} {target} failed: {done.stderr.strip()}", target=str(target))
    return target


def unmount_all_under(path: Path, lab: Path) -> list[Path]:
    """Unmount everything at or below `path` (inside the lab only); lazy unmount when busy."""
    ensure_inside(path, lab, "unmount under")
    unmounted = []
    for _ in range(3):  # a lazy unmount can reveal a mount that was hidden below it
        points = mounts_under(path)
        if not points:
            break
        for point in points:
            ensure_inside(point, lab, "unmount")
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                time.sleep(0.2)
                if subprocess.run(["umount", "-l", str(point)], capture_output=True).returncode != 0:
                    raise LabError(f"cannot unmount {point}", mount_point=str(point))
            unmounted.append(point)
    return unmounted


def remove_tree(path: Path, lab: Path) -> None:
    """Unmount everything below `path`, check nothing is left mounted, then delete it.

    Deleting through a leftover bind mount of /dev or /proc would delete the host's own files."""
    unmount_all_under(path, lab)
    left = mounts_under(path)
    if left:
        raise LabError(
            f"{path} still has mounts ({', '.join(map(str, left))}); not deleting it", path=str(path)
        )
    shutil.rmtree(ensure_inside(path, lab, "delete"))
