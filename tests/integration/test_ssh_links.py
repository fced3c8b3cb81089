"""Boards behind bastions and on bad links: ProxyJump, a shaped lossy link, a connection cut mid-upload."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgekit.testing.models import make_mlp
from edgekit.testing.net import LinkProxy, slow_link, slow_link_missing_reason
from edgekit.testing.ssh import Sshd, free_port, sshd_missing_reason, start_sshd, write_inventory
from tests.cli_run import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sshd_missing_reason() is not None, reason=str(sshd_missing_reason())),
]
FAST = ["--runs", "20", "--min-seconds", "0", "--json"]


def bench(model: Path, device: str, inventory: Path, home: Path) -> tuple[int, dict | None, str]:
    proc = run_cli("bench", str(model), "--device", device, "--inventory", str(inventory), *FAST, home=home)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.returncode in (0, 1) else None, proc.stderr


@pytest.fixture(scope="module")
def bastion(sshd: Sshd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A jump host that logs forwarded connections; it also accepts the board's key (one key for both)."""
    directory = tmp_path_factory.mktemp("bastion")
    server = start_sshd(directory, extra_config="LogLevel DEBUG1\n")
    with (directory / "authorized_keys").open("a") as authorized:
        authorized.write(sshd.user_key.with_suffix(".pub").read_text())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 2.1 MB of weights: long enough on a shaped link to measure, and to cut mid-upload."""
    return make_mlp(tmp_path_factory.mktemp("big") / "big.onnx", features=1024, hidden=512)


def test_proxy_jump_from_ssh_config(sshd: Sshd, bastion: Sshd, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.host_key_line + bastion.host_key_line)
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host jumpbox\n  HostName 127.0.0.1\n  Port {bastion.port}\n  User root\n"
        f"  IdentityFile {bastion.user_key}\n"
        f"Host pi-behind\n  HostName 127.0.0.1\n  Port {sshd.port}\n  ProxyJump jumpbox\n"
    )
    entry = sshd.inventory_entry("pi-behind", tmp_path / "w", known_hosts=str(known_hosts))
    del entry["port"]
    inventory = write_inventory(
        tmp_path / "devices.toml", {**entry, "host": "pi-behind", "ssh_config": str(config)}
    )
    code, result, stderr = bench(Path(make_mlp(tmp_path / "m.onnx")), "pi-behind", inventory, tmp_path)
    assert code == 0, stderr
    assert result is not None and result["transfer"]["method"] == "ssh"
    assert bastion.log is not None
    forwarded = bastion.log.read_text()
    assert f"server_request_direct_tcpip: originator 127.0.0.1 port 0, target 127.0.0.1 port {sshd.port}" in (
        forwarded
    )


@pytest.mark.parametrize(
    ("jump", "message"),
    [
        ("root@127.0.0.1:DEAD_PORT", "unreachable at 127.0.0.1:DEAD_PORT (bastion '127.0.0.1')"),
        ("root@127.0.0.1:BASTION_PORT", "bastion '127.0.0.1' could not open a connection to 127.0.0.1:1"),
        ("root@bastion:ssh", "device[0].proxy_jump: ProxyJump 'root@bastion:ssh': cannot read the hop"),
    ],
    ids=["bastion-down", "board-unreachable-from-bastion", "bad-spec"],
)
def test_proxy_jump_failures_name_the_bastion(
    sshd: Sshd, bastion: Sshd, tmp_path: Path, jump: str, message: str
) -> None:
    dead = str(free_port())
    jump = jump.replace("DEAD_PORT", dead).replace("BASTION_PORT", str(bastion.port))
    message = message.replace("DEAD_PORT", dead)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.host_key_line + bastion.host_key_line)
    overrides: dict[str, object] = {"proxy_jump": jump, "known_hosts": str(known_hosts)}
    if "BASTION" in message or "could not open" in message:
        overrides["port"] = 1  # nothing listens there, seen from the bastion
    inventory = write_inventory(tmp_path / "d.toml", sshd.inventory_entry("b", tmp_path / "w", **overrides))
    code, _, stderr = bench(Path(make_mlp(tmp_path / "m.onnx")), "b", inventory, tmp_path)
    expected_code = 2 if "cannot read" in message else 3
    assert code == expected_code, stderr
    assert message in stderr


@pytest.mark.skipif(slow_link_missing_reason() is not None, reason=str(slow_link_missing_reason()))
def test_slow_lossy_link_is_slow_and_still_correct(big_model: Path, tmp_path: Path) -> None:
    rate_mbit, loss_percent, delay_ms = 8.0, 2.0, 20.0
    with slow_link(rate_mbit=rate_mbit, loss_percent=loss_percent) as link:
        board = start_sshd(tmp_path / "sshd", netns=link.netns, address=link.board_address)
        proxy = LinkProxy((link.board_address, board.port), delay_ms=delay_ms)  # latency: no netem here
        try:
            known_hosts = board.known_hosts_via(tmp_path / "known_hosts", "127.0.0.1", proxy.port)
            entry = board.inventory_entry(
                "pi-far", tmp_path / "w", host="127.0.0.1", port=proxy.port, known_hosts=str(known_hosts)
            )
            inventory = write_inventory(tmp_path / "devices.toml", entry)
            code, result, stderr = bench(big_model, "pi-far", inventory, tmp_path)
            dropped = link.dropped_packets()
        finally:
            proxy.close()
            board.stop()
    assert code == 0, stderr
    assert result is not None
    size = big_model.stat().st_size
    transfer = result["transfer"]
    assert transfer["bytes_sent"] == size and not transfer["skipped_cached"]
    line_rate_s = size * 8 / (rate_mbit * 1e6)
    print(
        f"\nslow link {rate_mbit} Mbit/s, {loss_percent}% loss, +{delay_ms} ms each way: {size / 1e6:.2f} MB "
        f"pushed in {transfer['seconds']:.2f} s ({size * 8 / transfer['seconds'] / 1e6:.2f} Mbit/s; "
        f"line rate alone {line_rate_s:.2f} s), {dropped} packets dropped"
    )
    assert transfer["seconds"] >= 0.9 * line_rate_s  # the link really was shaped
    assert dropped > 0  # and really lost packets, which TCP recovered from
    assert result["latency_ms"]["p50"] > 0 and result["latency_ms"]["n"] >= 20


def test_a_link_cut_mid_upload_resumes_on_the_next_run(sshd: Sshd, big_model: Path, tmp_path: Path) -> None:
    proxy = LinkProxy(("127.0.0.1", sshd.port), cut_after_bytes=1_200_000)
    try:
        entry = sshd.inventory_entry("b", tmp_path / "w", port=proxy.port)
        known_hosts = sshd.known_hosts_via(tmp_path / "known_hosts", "127.0.0.1", proxy.port)
        inventory = write_inventory(tmp_path / "devices.toml", {**entry, "known_hosts": str(known_hosts)})
        code, _, stderr = bench(big_model, "b", inventory, tmp_path)
        assert code == 3, stderr
        assert "connection lost during the upload of big.onnx" in stderr
        assert proxy.cuts == 1
        partial = next((tmp_path / "w" / "artifacts").glob("*.onnx.part"))
        kept = partial.stat().st_size
        assert 0 < kept < big_model.stat().st_size
        code, result, stderr = bench(big_model, "b", inventory, tmp_path)  # the proxy cuts only once
    finally:
        proxy.close()
    assert code == 0, stderr
    assert result is not None and result["transfer"]["bytes_sent"] == big_model.stat().st_size - kept
    assert partial.with_suffix("").read_bytes() == big_model.read_bytes() and not partial.exists()


@pytest.fixture
def small_disk(tmpfs: Callable[[str, str], Path]) -> Path:
    """A real 1 MiB tmpfs: the board's disk, full after the agent and half a model."""
    return tmpfs("small disk", "1m")


def test_a_full_board_disk_is_named_and_nothing_partial_is_used(
    sshd: Sshd, big_model: Path, small_disk: Path, tmp_path: Path
) -> None:
    inventory = write_inventory(tmp_path / "devices.toml", sshd.inventory_entry("b", small_disk))
    code, _, stderr = bench(big_model, "b", inventory, tmp_path)
    assert code == 3, stderr
    assert "the board's disk is full: big.onnx needs" in stderr
    assert not list((small_disk / "artifacts").iterdir())  # no half file, and the space given back
