"""The agent zipapp (edgekit.transport.agent_bundle): same sources, same bytes, same sha256."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import edgekit_agent
import pytest

from edgekit.core.errors import DeviceError
from edgekit.core.resources import agent_source_dir
from edgekit.transport.agent_bundle import FIXED_TIME, agent_members, build_agent_bundle, bundle_bytes


def _copy_sources(destination: Path) -> Path:
    shutil.copytree(agent_source_dir() / "edgekit_agent", destination / "edgekit_agent")
    return destination


def test_the_same_sources_give_the_same_bytes() -> None:
    first, second = bundle_bytes(), bundle_bytes()
    assert first == second
    assert build_agent_bundle().sha256 == hashlib.sha256(first).hexdigest()


def test_members_are_sorted_dated_1980_mode_0644_stored_and_only_sources(tmp_path: Path) -> None:
    archive = zipfile.ZipFile(build_agent_bundle().path)
    infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert names[0] == "__main__.py"
    package = agent_source_dir() / "edgekit_agent"
    sources = sorted(
        f"edgekit_agent/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert names[1:] == sources
    for info in infos:
        assert info.date_time == FIXED_TIME
        assert info.external_attr >> 16 == 0o100644
        assert info.compress_type == zipfile.ZIP_STORED
    assert archive.comment == b""


def test_timestamps_permissions_and_bytecode_in_the_sources_do_not_change_the_hash(tmp_path: Path) -> None:
    copy = _copy_sources(tmp_path / "copy")
    for path in (copy / "edgekit_agent").rglob("*.py"):
        path.chmod(0o600)
        os.utime(path, (2_000_000_000, 2_000_000_000))
    cache = copy / "edgekit_agent" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "host.cpython-311.pyc").write_bytes(b"\x00bytecode")
    assert bundle_bytes(copy) == bundle_bytes()


def test_a_changed_source_changes_the_hash(tmp_path: Path) -> None:
    copy = _copy_sources(tmp_path / "copy")
    host = copy / "edgekit_agent" / "host.py"
    host.write_text(host.read_text() + "\n# changed\n")
    assert build_agent_bundle(copy).sha256 != build_agent_bundle().sha256


def test_the_built_file_lands_in_edgekit_home_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    bundle = build_agent_bundle()
    assert bundle.path == Path(os.environ["EDGEKIT_HOME"]) / "agent" / f"agent-{bundle.sha256}.pyz"
    assert bundle.path.name == bundle.name
    assert list(work.iterdir()) == []
    assert [p.name for p in bundle.path.parent.iterdir()] == [bundle.name]  # no temporary left behind
    bundle.path.write_bytes(b"corrupted")  # a damaged cache file is rebuilt, not trusted
    assert build_agent_bundle().path.read_bytes() == bundle_bytes()


def test_a_missing_agent_package_is_a_one_line_device_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="the agent package is missing") as caught:
        agent_members(tmp_path)
    assert "\n" not in str(caught.value)


def test_the_zipapp_runs_and_starts_its_bench_child_from_itself(tmp_path: Path) -> None:
    pyz = build_agent_bundle().path
    version = subprocess.run([sys.executable, str(pyz), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"edgekit-agent {edgekit_agent.AGENT_VERSION}", version.stderr
    # Inside the zipapp there is no file to run with -m: the child is this Python + the .pyz.
    code = (
        "import sys\n"
        "from edgekit_agent.child_process import child_command\n"
        "print(repr(child_command(['--sysfs-root', '/s'])))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(pyz)},
    )
    assert shown.stdout.strip() == repr(
        ([sys.executable, str(pyz), "--bench-child", "--sysfs-root", "/s"], None)
    )


def test_from_the_source_folder_the_child_is_the_package_run_with_m() -> None:
    from edgekit_agent.child_process import child_command

    argv, env = child_command([])
    assert argv == [sys.executable, "-m", "edgekit_agent", "--bench-child"]
    assert env is not None
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(agent_source_dir().resolve())


def test_every_agent_module_is_python_3_8_grammar() -> None:
    """Boards run the agent on Python >= 3.8: no syntax newer than that (match, parenthesised
    context managers, ...). Newer library calls (str.removeprefix, zip(strict=)) are not caught here."""
    package = agent_source_dir() / "edgekit_agent"
    modules = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(modules) > 20
    for path in modules:
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
