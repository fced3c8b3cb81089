"""Add, replace or remove one [[device]] table in an inventory file, leaving the rest as written.

The file is edited as text (comments and other boards stay byte for byte), the result is
validated like any inventory (edgekit.transport.inventory.Inventory), then written atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgekit.core.atomic import write_text_atomic
from edgekit.core.config import tomllib
from edgekit.transport.inventory import parse_inventory

_TABLE_HEADER = re.compile(r"^\s*\[")
_DEVICE_HEADER = re.compile(r"^\s*\[\[\s*device\s*\]\]")


def _blocks(text: str) -> list[str]:
    """The text cut before every table header: a preamble, then one block per table."""
    blocks, current = [], []
    for line in text.splitlines(keepends=True):
        if _TABLE_HEADER.match(line) and current:
            blocks.append("".join(current))
            current = []
        current.append(line)
    if current:
        blocks.append("".join(current))
    return blocks


def _device_name(block: str) -> str | None:
    if not _DEVICE_HEADER.match(block):
        return None
    try:
        devices = tomllib.loads(block).get("device") or [{}]
    except tomllib.TOMLDecodeError:
        return None
    name = devices[0].get("name")
    return name if isinstance(name, str) else None


def render_device(entry: dict[str, Any]) -> str:
    """One [[device]] table; JSON strings, numbers, booleans and string lists are valid TOML."""
    return "[[device]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in entry.items())


def remove_device_text(text: str, name: str) -> str:
    return "".join(block for block in _blocks(text) if _device_name(block) != name)


def upsert_device_text(text: str, entry: dict[str, Any]) -> str:
    """`text` without any table of this device's name, with the new table appended (pure)."""
    kept = remove_device_text(text, str(entry["name"])).rstrip("\n")
    return (kept + "\n\n" if kept else "") + render_device(entry)


def _write(path: Path, text: str) -> None:
    parse_inventory(tomllib.loads(text), path)  # never write an inventory edgekit cannot read
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def upsert_device(path: Path, entry: dict[str, Any]) -> None:
    _write(path, upsert_device_text(path.read_text() if path.exists() else "", entry))


def remove_device(path: Path, name: str) -> bool:
    """Remove the device's table; False when the file or the device was not there."""
    if not path.exists():
        return False
    text = path.read_text()
    edited = remove_device_text(text, name)
    if edited == text:
        return False
    _write(path, edited)
    return True
