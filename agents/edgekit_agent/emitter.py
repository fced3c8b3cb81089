"""One JSON object per line on a text stream, whole lines only, from any thread."""

from __future__ import annotations

import json
import threading
from typing import IO, Any, Dict


class Emitter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, message: Dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()
