"""edgekit lab's pure parts: apt sources, prerequisites, path guards, mounts, state, inventory edits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from edgekit_agent.facts.cpufreq import read_cpufreq
from edgekit_agent.facts.emulation import parse_emulation
from edgekit_agent.facts.throttle import read_throttled
from edgekit_agent.host import Host
from edgekit_agent.sensors.thermal import read_thermal_zones

from edgekit.core.config import tomllib
from edgekit.core.errors import EXIT_USAGE, LabError, MissingPrerequisiteError, UsageError
from edgekit.core.profiles import Budget, load_profile
from edgekit.core.result import Result
from edgekit.judge.budgets import EMULATED_REASON, evaluate
from edgekit.lab import preflight
from edgekit.lab.board_sysfs import make_board_sysfs
from edgekit.lab.inventory_edit import remove_device_text, upsert_device, upsert_device_text
from edgekit.lab.mirror import debian_mirror, debian_mirror_from, parse_deb822, parse_one_line
from edgekit.lab.mounts import mounts_under, parse_mount_points, remove_tree
from edgekit.lab.paths import check_name, ensure_inside, inside
from edgekit.lab.recipe import RootfsRecipe
from edgekit.lab.state import LabState, pid_alive, read_state, write_state
from edgekit.transport.inventory import parse_inventory
from tests.results import make_result

# /etc/apt/sources.list.d/debian.sources of a Debian 12 cloud image (recorded).
DEB822 = """Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
ONE_LINE = """# deb cdrom:[Debian GNU/Linux 12]/ bookworm main
deb http://security.example/debian-security bookworm-security main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian.gpg] https://ftp.example/debian/ bookworm main
deb https://ftp.example/debian/ bookworm-updates main
"""


def test_deb822_takes_the_main_archive_not_security() -> None:
    assert parse_deb822(DEB822) == ["http://mirror.example/debian"]


def test_deb822_skips_disabled_and_source_stanzas() -> None:
    text = "Types: deb-src\nURIs: http://a.example/debian\nSuites: bookworm\n\n" + (
        "Types: deb\nURIs: http://b.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    assert parse_deb822(text) == []


def test_one_line_sources_skip_security_src_and_read_options() -> None:
    assert parse_one_line(ONE_LINE) == ["https://ftp.example/debian/"]
    assert debian_mirror_from([("sources.list", ONE_LINE)]) == "https://ftp.example/debian"


def test_mirror_prefers_web_uris_and_reads_both_formats() -> None:
    files = [("sources.list", "deb file:/srv/debian bookworm main\n"), ("debian.sources", DEB822)]
    assert debian_mirror_from(files) == "http://mirror.example/debian"
    assert debian_mirror_from([("sources.list", "")]) is None


def test_mirror_is_read_from_an_apt_dir_or_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(MissingPrerequisiteError) as caught:
        debian_mirror(tmp_path)
    assert caught.value.exit_code == EXIT_USAGE
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def _binfmt(tmp_path: Path, entry: str | None) -> Path:
    (tmp_path / "register").write_text("")
    if entry is not None:
        (tmp_path / "qemu-aarch64").write_text(entry)
    return tmp_path


QEMU_ENTRY = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"


def test_binfmt_checks_name_exactly_what_is_wrong(tmp_path: Path) -> None:
    assert "not mounted" in str(preflight.binfmt_gap(tmp_path / "absent"))
    assert "not registered" in preflight.binfmt_gap(_binfmt(tmp_path, None)).what  # type: ignore[union-attr]
    disabled = preflight.binfmt_gap(_binfmt(tmp_path, QEMU_ENTRY.replace("enabled", "disabled")))
    assert disabled is not None and "disabled" in disabled.what
    no_fix = preflight.binfmt_gap(_binfmt(tmp_path, QEMU_ENTRY.replace("PF", "P")))
    assert no_fix is not None and "F (fix binary)" in no_fix.what
    assert preflight.binfmt_gap(_binfmt(tmp_path, QEMU_ENTRY)) is None


def test_preflight_lists_every_gap_in_one_exit_2_error(tmp_path: Path) -> None:
    with pytest.raises(MissingPrerequisiteError) as caught:
        preflight.require(uid=1000, binfmt_dir=tmp_path / "absent")
    error = caught.value
    assert error.exit_code == EXIT_USAGE
    assert error.missing[0].startswith("root")
    assert any("binfmt_misc not mounted" in m for m in error.missing)
    assert preflight.MOUNT_LINE in error.message


@pytest.mark.parametrize("bad", ["", "..", "a/b", "../etc", "-x", "rootfs-1", "build-x", "a b", "x" * 64])
def test_board_names_cannot_escape_the_lab_dir(bad: str) -> None:
    with pytest.raises(UsageError):
        check_name(bad)


def test_only_paths_strictly_inside_the_lab_pass_the_guard(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    (lab / "pi").mkdir(parents=True)
    (lab / "escape").symlink_to(tmp_path)
    assert inside(lab / "pi" / "root" / "proc", lab)
    assert not inside(lab, lab)
    assert not inside(lab / ".." / "other", lab)
    assert not inside(lab / "escape" / "x", lab)  # a symlink out of the lab
    assert not inside(Path("/proc"), lab)
    with pytest.raises(LabError):
        ensure_inside(Path("/dev"), lab, "unmount")


def test_remove_tree_never_deletes_outside_the_lab(tmp_path: Path) -> None:
    lab, outside = tmp_path / "lab", tmp_path / "precious"
    (lab / "old-board").mkdir(parents=True)
    outside.mkdir()
    (lab / "link").symlink_to(outside)
    for path in (outside, lab / "link", lab):
        with pytest.raises(LabError):
            remove_tree(path, lab)
    assert outside.is_dir() and lab.is_dir()
    remove_tree(lab / "old-board", lab)
    assert not (lab / "old-board").exists()


def test_mount_points_are_unescaped_and_sorted_deepest_first(tmp_path: Path) -> None:
    board = tmp_path / "lab" / "my board"
    escaped = str(board).replace(" ", "\\040")
    text = (
        "proc /proc proc rw 0 0\n"
        f"proc {escaped}/root/proc proc rw 0 0\n"
        f"devtmpfs {escaped}/root/dev devtmpfs rw 0 0\n"
        f"devpts {escaped}/root/dev/pts devpts rw 0 0\n"
        f"proc {escaped}-2/root/proc proc rw 0 0\n"  # a sibling board, not below this one
    )
    assert f"{board}/root/proc" in parse_mount_points(text)
    found = mounts_under(board, text)
    assert found[0] == board / "root/dev/pts"
    assert set(found) == {board / "root/proc", board / "root/dev", board / "root/dev/pts"}


def test_state_round_trips_and_a_corrupt_file_is_a_typed_error(tmp_path: Path) -> None:
    state = LabState("pi4-emu", "raspberry-pi-4", str(tmp_path / "root"), str(tmp_path / "d.toml"), port=2222)
    state.mounts.append(str(tmp_path / "root/proc"))
    write_state(tmp_path, state)
    assert read_state(tmp_path) == state
    assert read_state(tmp_path / "nothing") is None
    (tmp_path / "state.json").write_text("{half")
    with pytest.raises(LabError):
        read_state(tmp_path)


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(None)
    assert not pid_alive(2**22 + 1)  # above the kernel's pid_max


def test_recipe_key_names_its_contents() -> None:
    recipe = RootfsRecipe()
    assert recipe.key() == RootfsRecipe().key()
    assert recipe.key() != RootfsRecipe(wheels=(*recipe.wheels, "extra==1.0")).key()
    assert recipe.site_packages == "usr/local/lib/python3.11/dist-packages"


INVENTORY = """# our lab
[[device]]
name = "pi4-lab-1"   # on the shelf
host = "10.0.0.5"

[[device]]
name = "pi4-emu"
host = "127.0.0.1"
port = 1
"""


def test_upsert_replaces_only_its_own_entry_and_keeps_comments() -> None:
    entry = {"name": "pi4-emu", "host": "127.0.0.1", "port": 2222, "tags": ["lab", "emulated"]}
    edited = upsert_device_text(INVENTORY, entry)
    assert "# our lab" in edited and 'name = "pi4-lab-1"   # on the shelf' in edited
    devices = parse_inventory(tomllib.loads(edited), Path("devices.toml"))
    assert devices["pi4-emu"].port == 2222 and devices["pi4-emu"].tags == ("lab", "emulated")
    assert devices["pi4-lab-1"].host == "10.0.0.5"
    assert upsert_device_text(edited, entry) == edited  # idempotent
    removed = remove_device_text(edited, "pi4-emu")
    assert list(parse_inventory(tomllib.loads(removed), Path("d"))) == ["pi4-lab-1"]


def test_upsert_refuses_to_write_an_inventory_edgekit_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(INVENTORY)
    with pytest.raises(Exception, match="local"):
        upsert_device(path, {"name": "local", "host": "127.0.0.1"})  # a reserved name
    assert path.read_text() == INVENTORY


def test_board_sysfs_reads_like_the_board_through_the_agent(tmp_path: Path) -> None:
    make_board_sysfs(tmp_path / "pi4", load_profile("raspberry-pi-4"))
    host = Host(sysfs_root=str(tmp_path / "pi4"))
    assert read_thermal_zones(host) == [
        {"zone": "thermal_zone0", "type": "cpu-thermal", "temp_c": 45.0, "cpu": True}
    ]
    assert len(read_cpufreq(host)) == 4
    assert read_throttled(host)["source"] == "rpi-firmware-sysfs"
    jetson = make_board_sysfs(tmp_path / "jetson", load_profile("jetson-orin-nano"))
    assert (jetson / "class/hwmon/hwmon0/name").read_text() == "ina3221\n"
    assert (jetson / "class/hwmon/hwmon0/in1_label").read_text() == "VDD_IN\n"


def test_agent_reads_the_emulation_marker() -> None:
    assert parse_emulation(None) is None
    assert parse_emulation('{"emulator": "qemu-user"}') == {"emulator": "qemu-user"}
    assert parse_emulation("{half")["emulator"] == "unknown"


def _result(emulated: bool) -> Result:
    return make_result(
        {
            "device.emulated": emulated,
            "latency_ms.p50": 12.0,
            "latency_ms.p90": 20.0,
            "latency_ms.p99": 30.0,
            "cold_start_ms": {"load": 100.0, "first_inference": 5.0},
            "memory.peak_rss_bytes": 100 * 2**20,
            "artifact.size_bytes": 2**20,
        }
    )


def test_timings_of_an_emulated_board_are_reported_never_judged() -> None:
    budget = Budget({"latency_p50_ms": 5.0, "cold_start_ms": 10.0, "peak_rss_mb": 50.0})
    real = {c.metric: c for c in evaluate(_result(False), budget).checks}
    assert real["latency_p50_ms"].verdict == "fail"
    emulated = evaluate(_result(True), budget)
    checks = {c.metric: c.to_dict() for c in emulated.checks}
    assert checks["latency_p50_ms"] == {
        "metric": "latency_p50_ms",
        "limit": 5.0,
        "value": 12.0,
        "verdict": "unknown",
        "reason": EMULATED_REASON,
        "unjudgeable": True,
    }
    assert checks["cold_start_ms"]["verdict"] == "unknown"
    assert checks["peak_rss_mb"]["verdict"] == "fail"  # memory is still the process's own
    assert emulated.verdict == "fail"
