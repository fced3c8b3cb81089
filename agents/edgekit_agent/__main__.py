"""The agent's command line: ``python3 agent-<sha256>.pyz [options]`` (the zipapp's own
__main__.py calls main() here) or ``python3 -m edgekit_agent [options]`` from a source folder.

    --sysfs-root DIR / --procfs-root DIR   read every sysfs/procfs fact under DIR (fake trees)
    --workdir DIR                          the device's edgekit folder (default ~/.edgekit)
    --lock-file PATH                       the device lock (default WORKDIR/bench.lock)
    --bench-child                          (internal) run one bench: params on stdin
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import List, Optional

from edgekit_agent import AGENT_VERSION
from edgekit_agent.host import Host


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="edgekit device agent (JSON lines on stdin/stdout)")
    parser.add_argument("--sysfs-root", default="/sys")
    parser.add_argument("--procfs-root", default="/proc")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--lock-file", default=None, help="the device lock (default: WORKDIR/bench.lock)")
    parser.add_argument("--bench-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version="edgekit-agent %s" % AGENT_VERSION)
    args = parser.parse_args(argv)
    host = Host(args.sysfs_root, args.procfs_root)
    workdir = os.path.expanduser(args.workdir or "~/.edgekit")
    if args.bench_child:
        from edgekit_agent.bench_child import bench_child_main

        return bench_child_main(host, workdir)
    from edgekit_agent.protocol import Agent

    tail = ["--sysfs-root", args.sysfs_root, "--procfs-root", args.procfs_root, "--workdir", workdir]
    # Protocol lines only on stdout: anything else that prints goes to stderr.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr
    stdin = os.fdopen(sys.stdin.fileno(), "rb")
    for name in ("SIGTERM", "SIGHUP"):  # stopped from outside: stop the bench child on the way out
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop)
    try:
        return Agent(host, tail, protocol_out, workdir, args.lock_file).serve(stdin)
    except KeyboardInterrupt:  # Ctrl-C on a `local` run's terminal: the bench child is stopped already
        return 130


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
