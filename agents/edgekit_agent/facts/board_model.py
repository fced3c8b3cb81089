"""The board's name: /proc/device-tree/model."""

from __future__ import annotations

from typing import Optional

from edgekit_agent.host import Host


def parse_device_tree_string(raw: Optional[bytes]) -> Optional[str]:
    """Device-tree string properties are NUL-terminated with no newline."""
    if raw is None:
        return None
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return text or None


def read_board_model(host: Host) -> Optional[str]:
    return parse_device_tree_string(host.read_bytes(host.proc_path("device-tree/model")))
