"""Fleet benchmark against a real sshd on loopback (needs root and openssh-server).

    python benchmarks/fleet.py [--devices 8]

1. Fan-out: N devices run the same short bench job through `edgekit fleet run`; wall time vs one
   device running it alone, measured in the same run. Goal <= 1.25x (not N x).
2. Re-push of an unchanged artifact: payload bytes (goal 0).
3. Push of a ~20 MB artifact over loopback vs `scp` of the same file, same run (goal within 2x).

On real boards each job runs on its own board's CPU. Here all N "boards" share this machine's
cores, so the fan-out is also compared with the CPU floor: the machine's busy CPU seconds during
the run (from /proc/stat) divided by its core count, the least wall time any scheduling could
reach. Fan-out/floor near 1 means the devices really ran concurrently; N x single would mean serial.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgekit.core.artifacts import sha256_file
from edgekit.data import demo_model_path
from edgekit.testing.models import make_mlp
from edgekit.testing.ssh import start_sshd, write_inventory
from edgekit.transport.inventory import SshTarget
from edgekit.transport.ssh import SshTransport


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGEKIT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def busy_cpu_seconds() -> float:
    """Machine-wide non-idle CPU time so far (the first line of /proc/stat, in USER_HZ ticks)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(*args: str, home: Path) -> tuple[float, int, float]:
    """Wall seconds, exit code, and the CPU floor: busy CPU seconds meanwhile / cores."""
    busy_before = busy_cpu_seconds()
    started = time.perf_counter()
    code = run_cli(*args, home=home).returncode
    wall = time.perf_counter() - started
    return wall, code, (busy_cpu_seconds() - busy_before) / (os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgekit-fleet-bench-") as scratch:
        root = Path(scratch)
        sshd = start_sshd(root / "sshd")
        try:
            entries = [
                sshd.inventory_entry(f"dev{i}", root / f"w{i}", tags=["all"]) for i in range(args.devices)
            ]
            write_inventory(root / "devices.toml", *entries)
            job = f'[[model]]\npath = "{demo_model_path()}"\n'
            settings = '[plan]\nruns = 200\nmin_seconds = 0\ninventory = "devices.toml"\n'
            (root / "one.toml").write_text(settings + '[devices]\nnames = ["dev0"]\n' + job)
            (root / "all.toml").write_text(settings + '[devices]\ntags = ["all"]\n' + job)
            timed("fleet", "run", str(root / "all.toml"), home=root)  # warm: agents and model pushed once
            single, _, _ = timed("fleet", "run", str(root / "one.toml"), home=root)
            fanout, code, floor = timed("fleet", "run", str(root / "all.toml"), home=root)
            print(
                f"fan-out: {args.devices} devices {fanout:.2f} s vs one device {single:.2f} s: "
                f"ratio {fanout / single:.2f} (goal <= 1.25; exit {code}); serial would be about "
                f"{args.devices * single:.1f} s; CPU floor on {os.cpu_count()} cores {floor:.2f} s, "
                f"fan-out/floor {fanout / floor:.2f}"
            )
            target = SshTarget(**{**entries[0], "tags": ()})
            big = make_mlp(root / "big.onnx", features=2048, hidden=2400, classes=16)
            size, digest = big.stat().st_size, sha256_file(big)
            transport = SshTransport(target)
            try:
                started = time.perf_counter()
                first = transport.stage_file(big, digest)
                push_s = time.perf_counter() - started
                again = transport.stage_file(big, digest)
            finally:
                transport.close()
            print(f"re-push of an unchanged artifact: {again.bytes_sent} payload bytes (goal 0)")
            started = time.perf_counter()
            subprocess.run(
                [
                    "scp",
                    "-q",
                    "-P",
                    str(sshd.port),
                    "-i",
                    str(sshd.user_key),
                    "-o",
                    f"UserKnownHostsFile={sshd.known_hosts}",
                    str(big),
                    f"root@127.0.0.1:{root}/scp-copy",
                ],
                check=True,
            )
            scp_s = time.perf_counter() - started
            print(
                f"push of {size / 2**20:.1f} MiB: edgekit {push_s:.2f} s ({first.bytes_sent} bytes, with the "
                f"board-side hash) vs scp {scp_s:.2f} s: ratio {push_s / scp_s:.2f} (goal <= 2)"
            )
        finally:
            sshd.stop()


if __name__ == "__main__":
    main()
