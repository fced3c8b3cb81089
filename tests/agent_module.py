"""The agent package for tests.

Its modules import as ``edgekit_agent.*`` (pytest puts agents/ on sys.path: pyproject.toml
``[tool.pytest.ini_options] pythonpath``), so parser tests import the function they test from
the module that holds it. Process tests run the zipapp the transports run (agent_command).
"""

from __future__ import annotations

import sys
from pathlib import Path

import edgekit_agent

from edgekit.core.resources import agent_source_dir
from edgekit.transport.agent_bundle import build_agent_bundle

# The tests must exercise this checkout's agent, not another copy somewhere on sys.path.
assert Path(edgekit_agent.__file__).resolve().parent == (agent_source_dir() / "edgekit_agent").resolve()


def agent_zipapp() -> Path:
    """The agent zipapp built from this checkout's sources (cached under EDGEKIT_HOME)."""
    return build_agent_bundle().path


def agent_command(*args: str) -> list[str]:
    """argv that starts the agent as the local transport does: this Python running the zipapp."""
    return [sys.executable, str(agent_zipapp()), *args]
