"""resolve_board: a device paired with its profile (or an explicit one) and the effective budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.core.errors import UnknownDeviceError, UnknownProfileError
from edgekit.core.profiles import load_profile
from edgekit.transport.board import resolve_board

INVENTORY = """
[[device]]
name = "pi-a"
host = "10.0.0.1"
profile = "raspberry-pi-4"

[[device]]
name = "odd"
host = "10.0.0.2"
profile = "no-such-board"
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY)
    return path


def test_inventory_device_gets_its_profile_and_budget(inventory: Path) -> None:
    board = resolve_board("pi-a", inventory=inventory)
    assert board.name == "pi-a" and board.device.kind == "ssh" and board.device.ssh is not None
    assert board.profile.name == "raspberry-pi-4"
    assert board.budget == board.profile.budget == load_profile("raspberry-pi-4").budget


def test_local_without_inventory() -> None:
    board = resolve_board("local")
    assert board.name == "local" and board.device.kind == "local" and board.profile.name == "local"


def test_explicit_profile_overrides_the_inventory_one(inventory: Path, tmp_path: Path) -> None:
    board = resolve_board("pi-a", inventory=inventory, profile="jetson-orin-nano")
    assert board.name == "pi-a" and board.profile.name == "jetson-orin-nano"
    assert board.budget == load_profile("jetson-orin-nano").budget
    own = tmp_path / "my-board.toml"
    own.write_text(load_profile("local").path.read_text().replace('name = "local"', 'name = "my-board"'))
    by_path = resolve_board("pi-a", inventory=inventory, profile=str(own))
    assert by_path.profile.name == "my-board" and by_path.profile.path == own


def test_budget_overrides_replace_only_their_metrics(inventory: Path) -> None:
    board = resolve_board(
        "pi-a", inventory=inventory, budget_overrides={"latency_p90_ms": 20.0, "max_start_temp_c": 55.0}
    )
    own = load_profile("raspberry-pi-4").budget.limits
    assert board.budget.limits == {**own, "latency_p90_ms": 20.0, "max_start_temp_c": 55.0}
    assert board.budget.max_start_temp_c == 55.0
    assert board.profile.budget.limits == own  # the profile itself is untouched
    tighter = board.with_budget_overrides({"latency_p50_ms": 1.0})
    assert tighter.budget.limits == {**board.budget.limits, "latency_p50_ms": 1.0}
    assert tighter.device == board.device and tighter.profile == board.profile


def test_unknown_device_fails_before_any_profile_is_read(inventory: Path) -> None:
    with pytest.raises(UnknownDeviceError) as info:
        resolve_board("pi-aa", inventory=inventory, profile="no-such-profile")
    assert info.value.message == (
        "unknown device 'pi-aa' (did you mean 'pi-a'?); known devices: local, pi-a, odd"
    )
    assert info.value.exit_code == 2


def test_unknown_profile_of_the_inventory_or_the_override(inventory: Path) -> None:
    with pytest.raises(UnknownProfileError, match=r"^unknown profile 'no-such-board'"):
        resolve_board("odd", inventory=inventory)
    close = r"^unknown profile 'raspbery-pi-4' \(did you mean 'raspberry-pi-4'\?\)"
    with pytest.raises(UnknownProfileError, match=close):
        resolve_board("local", profile="raspbery-pi-4")
