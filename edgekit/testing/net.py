"""Bad networks for tests and benchmarks: a shaped, lossy link in a network namespace, and a TCP proxy.

- `slow_link()`: a network namespace joined to this one by a veth pair, the bandwidth capped with `tbf` on
  both ends and real packet loss from an nftables `numgen random` drop rule inside the namespace (the
  kernel drops the packets; TCP retransmits). Start a board's sshd inside it with
  `start_sshd(..., netns=link.netns, address=link.board_address)`. Needs root, iproute2 and nftables.
  Kernels without `sch_netem` (these machines) cannot add latency this way, hence:
- `LinkProxy`: a userspace TCP relay that delivers every chunk `delay_ms` late (latency) and can cut the
  connection after N bytes sent towards the board (a dropped link mid-upload).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

_LINK_IDS = itertools.count()
_LOSS_TABLE = "edgekit_loss"


def slow_link_missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install iproute2 nftables)"
    probe = f"ekprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class SlowLink:
    netns: str
    host_address: str
    board_address: str
    rate_mbit: float
    loss_percent: float

    def dropped_packets(self) -> int:
        """Packets the loss rule has dropped so far (both directions)."""
        listing = subprocess.run(
            ["ip", "netns", "exec", self.netns, "nft", "list", "table", "inet", _LOSS_TABLE],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", listing))


def _shape(netns: str | None, device: str, rate_mbit: float) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    # burst must hold at least one full-size packet per timer tick; latency bounds the queue.
    tbf = ["tbf", "rate", f"{rate_mbit}mbit", "burst", "32kbit", "latency", "200ms"]
    _run(*prefix, "tc", "qdisc", "add", "dev", device, "root", *tbf)


@contextlib.contextmanager
def slow_link(rate_mbit: float = 8.0, loss_percent: float = 1.0) -> Iterator[SlowLink]:
    """A namespace at 10.77.N.2 reachable from here (10.77.N.1) over a shaped, lossy veth pair."""
    link_id = (os.getpid() * 7 + next(_LINK_IDS)) % 250
    netns, host_end, board_end = f"ek{link_id}n", f"ek{link_id}h", f"ek{link_id}b"
    host_address, board_address = f"10.77.{link_id}.1", f"10.77.{link_id}.2"
    _run("ip", "netns", "add", netns)
    try:
        _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", board_end)
        _run("ip", "link", "set", board_end, "netns", netns)
        _run("ip", "addr", "add", f"{host_address}/30", "dev", host_end)
        _run("ip", "link", "set", host_end, "up")
        _run("ip", "-n", netns, "addr", "add", f"{board_address}/30", "dev", board_end)
        _run("ip", "-n", netns, "link", "set", board_end, "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        _shape(None, host_end, rate_mbit)
        _shape(netns, board_end, rate_mbit)
        per_mille = round(loss_percent * 10)
        nft = ["ip", "netns", "exec", netns, "nft"]
        _run(*nft, "add", "table", "inet", _LOSS_TABLE)
        for hook in ("input", "output"):
            chain = f"{{ type filter hook {hook} priority 0; }}"
            _run(*nft, "add", "chain", "inet", _LOSS_TABLE, hook, chain)
            interface = "iifname" if hook == "input" else "oifname"
            drop = ["numgen", "random", "mod", "1000", "<", str(per_mille), "counter", "drop"]
            _run(*nft, "add", "rule", "inet", _LOSS_TABLE, hook, interface, board_end, *drop)
        yield SlowLink(netns, host_address, board_address, rate_mbit, loss_percent)
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


class LinkProxy:
    """127.0.0.1:`port` -> `target`, each chunk delivered `delay_ms` late in each direction.

    `cut_after_bytes`: the first connection is cut once that many bytes went towards the target.
    """

    def __init__(self, target: tuple[str, int], delay_ms: float = 0.0, cut_after_bytes: int | None = None):
        self.target = target
        self.delay_s = delay_ms / 1000
        self.cut_after_bytes = cut_after_bytes
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            cut = self.cut_after_bytes if self.cuts == 0 else None
            for source, sink, limit in ((client, upstream, cut), (upstream, client, None)):
                pump = threading.Thread(target=self._pump, args=(source, sink, limit, (client, upstream)))
                pump.daemon = True
                pump.start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, limit: int | None, both: tuple[socket.socket, ...]
    ) -> None:
        pending: queue.Queue[tuple[float, bytes]] = queue.Queue()
        threading.Thread(target=self._deliver, args=(pending, sink, both), daemon=True).start()
        forwarded = 0
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if limit is not None and data and forwarded + len(data) >= limit:
                pending.put((time.monotonic() + self.delay_s, data[: limit - forwarded]))
                self.cuts += 1
                data = b""
            pending.put((time.monotonic() + self.delay_s, data))
            if not data:
                return
            forwarded += len(data)

    @staticmethod
    def _deliver(
        pending: queue.Queue[tuple[float, bytes]], sink: socket.socket, both: tuple[socket.socket, ...]
    ) -> None:
        while True:
            due, data = pending.get()
            time.sleep(max(0.0, due - time.monotonic()))
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in both:  # one side ended: end the connection as a dropped link would
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
