"""A board: a device, the profile that judges it and the budget in force, resolved once.

Every command and library function that measures or judges on a device takes a `Board` made here,
so the pairing of a device with its profile (the inventory's `profile`, or an explicit override)
and the budget overrides of a run happen in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from edgekit.core.profiles import Budget, DeviceProfile, load_profile
from edgekit.transport.devices import Device, resolve_device


@dataclass(frozen=True)
class Board:
    """`device` (how to reach it), `profile` (its facts, sensors and budgets) and `budget`, the
    profile's budget with any overrides applied (the limits a result is judged against)."""

    device: Device
    profile: DeviceProfile
    budget: Budget

    @property
    def name(self) -> str:
        """The device name (`local` or an inventory name)."""
        return self.device.name

    @classmethod
    def of(
        cls,
        device: Device,
        profile: DeviceProfile,
        budget_overrides: Mapping[str, float | None] | None = None,
    ) -> Board:
        """A board from parts already in hand (a profile parsed from a file of one's own, say)."""
        return cls(device, profile, profile.budget.with_overrides(dict(budget_overrides or {})))

    def with_budget_overrides(self, overrides: Mapping[str, float | None]) -> Board:
        """The same board judged with `overrides` (metric -> limit, units in the metric name; None
        drops that budget) on top of its current budget."""
        return replace(self, budget=self.budget.with_overrides(dict(overrides)))


def board_for(
    device: Device, *, profile: str | None = None, budget_overrides: Mapping[str, float | None] | None = None
) -> Board:
    """The board of a resolved device: `profile` (a profile name or .toml path) overrides the
    device's own. Raises UnknownProfileError (exit 2) for a profile that is not found, ConfigError
    for an invalid profile file."""
    return Board.of(device, load_profile(profile or device.profile), budget_overrides)


def resolve_board(
    name: str,
    *,
    inventory: Path | None = None,
    profile: str | None = None,
    budget_overrides: Mapping[str, float | None] | None = None,
) -> Board:
    """Device `name` (`local` or an inventory name) with its profile, or `profile` (a name or .toml
    path) when given, and the profile's budget with `budget_overrides` applied.

    Raises UnknownDeviceError (before any profile is read) for a name that is neither `local` nor in
    the inventory, then UnknownProfileError / ConfigError for the profile."""
    return board_for(resolve_device(name, inventory), profile=profile, budget_overrides=budget_overrides)
