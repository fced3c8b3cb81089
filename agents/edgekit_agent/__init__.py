"""edgekit device agent: a small package, Python >= 3.8, stdlib + numpy + one inference runtime.

Speaks JSON lines on stdin/stdout (protocol 1, see docs/protocol.md); logs go to stderr. The host
ships it to a board as one zipapp (edgekit/transport/agent_bundle.py builds it byte for byte the
same from the same sources) and runs ``python3 agent-<sha256>.pyz``; in a source checkout
``PYTHONPATH=agents python3 -m edgekit_agent`` runs the same code.

Layout: ``__main__`` (command line), ``protocol`` (the request loop and its ops), ``facts/`` and
``sensors/`` (each fact or sensor a reader next to its pure parser), ``sampler`` and ``energy``
(power sampling and the energy summary), ``runtimes/`` (onnxruntime, TFLite), ``bench`` (one
benchmark, in named steps), ``bench_child`` / ``child_process`` (the child process that runs it).
This package never imports edgekit (an import-linter contract in pyproject.toml).
"""

import os

# onnxruntime writes ~/.cache/Microsoft/DeveloperTools/ and $TMPDIR/.ses on import unless
# ORT_DISABLE_TELEMETRY is set: nothing of a benchmark stays on the board outside the workdir
# (a value already set is kept; the bench child inherits it).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

AGENT_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
