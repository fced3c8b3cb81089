"""Free space where artifacts will land."""

from __future__ import annotations

import os
import shutil
from typing import Optional


def disk_free_bytes(path: str) -> Optional[int]:
    """Free bytes on the file system holding path (or its nearest existing parent)."""
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        return shutil.disk_usage(probe or "/").free
    except OSError:
        return None
