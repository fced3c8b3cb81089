"""A fake board for integration tests: this machine's real agent reading a fake sysfs tree, judged
by a profile the test writes (so sensors and budgets are the test's choice)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.core.profiles import DeviceProfile, parse_profile
from edgekit.transport.board import Board
from edgekit.transport.devices import Device

NAME = "fake-board"


def fake_profile(
    tmp_path: Path,
    power: list[str],
    budgets: dict[str, float] | None = None,
    accelerators: dict[str, Any] | None = None,
    **sensors: Any,
) -> DeviceProfile:
    """A profile with the given power sensor specs and sensor options, a cpu-thermal zone, the
    given budgets (none when `budgets` is None) and [accelerators] table (none when None)."""
    data: dict[str, Any] = {
        "schema": 1,
        "name": NAME,
        "facts": {
            "arch": "any",
            "cores": 0,
            "memory_mb": 0,
            "runtime": "onnxruntime",
            "int8_scheme": "u8s8",
            "reduce_range": False,
            "default_threads": 1,
        },
        "sensors": {"thermal_zone": "cpu-thermal", "power": power, **sensors},
    }
    if budgets is not None:
        data["budgets"] = budgets
    if accelerators is not None:
        data["accelerators"] = accelerators
    return parse_profile(data, tmp_path / f"{NAME}.toml")


def fake_device(sysfs: Path) -> Device:
    """The local agent, reading `sysfs` instead of this machine's /sys."""
    return Device(name=NAME, profile=NAME, kind="local", sysfs_root=sysfs)


def fake_board(sysfs: Path, profile: DeviceProfile) -> Board:
    """The fake device judged by `profile`."""
    return Board.of(fake_device(sysfs), profile)
