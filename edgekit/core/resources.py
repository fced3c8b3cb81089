"""Where the files shipped beside the library live: the agent package and the device profiles.

In a wheel they are force-included under ``edgekit/_bundled`` (``agents/edgekit_agent/``,
``device_profiles/``); in a source checkout (editable install) they are the top-level
``agents/`` and ``device_profiles/`` folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgekit.core.errors import UsageError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # edgekit/
_BUNDLED_DIR = _PACKAGE_DIR / "_bundled"
_SOURCE_ROOT = _PACKAGE_DIR.parent


def _shipped(relative: str) -> Path:
    bundled = _BUNDLED_DIR / relative
    if bundled.exists():
        return bundled
    return _SOURCE_ROOT / relative


def agent_source_dir() -> Path:
    """The folder holding the agent package ``edgekit_agent/``, whose sources
    edgekit.transport.agent_bundle zips into the one file started on (or uploaded to) a device."""
    return _shipped("agents")


def bundled_profiles_dir() -> Path:
    return _shipped("device_profiles")


def edgekit_home() -> Path:
    """Per-user state: results store, user profiles, inventory. EDGEKIT_HOME overrides. The
    folder need not exist yet. Raises UsageError (exit 2) when it is something other than a
    folder (a file), before any work is done that could not be kept there."""
    override = os.environ.get("EDGEKIT_HOME")
    home = Path(override).expanduser() if override else Path.home() / ".edgekit"
    if home.exists() and not home.is_dir():
        name = "EDGEKIT_HOME" if override else "~/.edgekit"
        raise UsageError(f"{name} {home} is not a folder (edgekit keeps its results and profiles there)")
    return home


def user_profiles_dir() -> Path:
    return edgekit_home() / "profiles"


def default_store_path() -> Path:
    return edgekit_home() / "results.sqlite"
