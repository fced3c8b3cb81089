"""Where facts are read from: the real / or a fake tree (--sysfs-root, --procfs-root).

Every sysfs/procfs read goes through a root prefix so tests can point the agent at fake trees
in the kernel's exact formats. Reads never raise: every failure is None.
"""

from __future__ import annotations

import os
import re
from typing import List, Optional, Tuple


def parse_int(text: Optional[str]) -> Optional[int]:
    """A sysfs integer attribute: one ASCII value and a trailing newline."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def natural_key(name: str) -> Tuple[str, int]:
    """Sort key: "cpu10" after "cpu9"."""
    match = re.match(r"^(.*?)(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


class Host:
    """Where facts are read from: real / or a fake tree."""

    def __init__(self, sysfs_root: str = "/sys", procfs_root: str = "/proc") -> None:
        self.sysfs_root = sysfs_root
        self.procfs_root = procfs_root

    def sys_path(self, relative: str) -> str:
        return os.path.join(self.sysfs_root, relative.lstrip("/"))

    def proc_path(self, relative: str) -> str:
        return os.path.join(self.procfs_root, relative.lstrip("/"))

    @staticmethod
    def read_text(path: str) -> Optional[str]:
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as handle:
                return handle.read(1 << 20)
        except (OSError, ValueError):
            return None

    @staticmethod
    def read_bytes(path: str) -> Optional[bytes]:
        try:
            with open(path, "rb") as handle:
                return handle.read(1 << 16)
        except OSError:
            return None

    def sys_text(self, relative: str) -> Optional[str]:
        return self.read_text(self.sys_path(relative))

    def list_sys(self, relative: str, pattern: str) -> List[str]:
        try:
            names = os.listdir(self.sys_path(relative))
        except OSError:
            return []
        regex = re.compile(pattern)
        return sorted((n for n in names if regex.fullmatch(n)), key=natural_key)
