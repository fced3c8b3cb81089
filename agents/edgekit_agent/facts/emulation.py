"""Whether this "board" is emulated: the marker `edgekit lab up` writes into an emulated board's
root filesystem (qemu user-mode emulation), so its timings are never mistaken for the real board's."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from edgekit_agent.host import Host

EMULATION_MARKER = "/etc/edgekit-emulation.json"


def parse_emulation(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """The emulation marker's JSON object (emulator, what board it stands for), None when absent."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"emulator": "unknown", "reason": "unreadable %s" % EMULATION_MARKER}
    return data if isinstance(data, dict) else {"emulator": "unknown"}


def read_emulation(host: Host) -> Optional[Dict[str, Any]]:
    return parse_emulation(host.read_text(EMULATION_MARKER))
