"""Import the agent file (agents/edgekit_agent.py is a script, not a package module)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from edgekit.core.resources import agent_path


def load_agent() -> ModuleType:
    if "edgekit_agent" in sys.modules:
        return sys.modules["edgekit_agent"]
    spec = importlib.util.spec_from_file_location("edgekit_agent", agent_path())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["edgekit_agent"] = module
    spec.loader.exec_module(module)
    return module
