"""edgekit: take a trained model to real edge boards and measure whether it fits there."""

import os as _os

__version__ = "0.1.0"

# onnxruntime (>= 1.2x on Linux) writes a device id and an event database under
# ~/.cache/Microsoft/DeveloperTools/ and a session file $TMPDIR/.ses as soon as it is imported,
# unless ORT_DISABLE_TELEMETRY is set: edgekit writes nothing outside its output path and
# $EDGEKIT_HOME, so it is set here, before any part imports onnxruntime (a value the user set
# is kept). The agent does the same on the board (agents/edgekit_agent/__init__.py).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
