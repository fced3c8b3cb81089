"""Commands that only read stored results (`history`, `report`, `check`, `compare` of stored runs)
never create a store: where there is none they say so (exit 2) and leave the file tree as it was."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from edgekit.store.postgres import POSTGRES
from tests.cli_run import run_cli
from tests.integration.test_cli import assert_one_line_error
from tests.results import V1_DIR

pytestmark = pytest.mark.integration

# Each reader once, where EDGEKIT_HOME points at a folder that does not exist ("home") or where
# --store names a file that does not exist in an existing folder ("option").
READERS = [
    ("home", ["history"]),
    ("option", ["report", "--format", "markdown"]),
    ("home", ["check", "0123abcd"]),
    ("option", ["check", str(V1_DIR / "run1.json"), "--baseline", "latest:local:demo_digits"]),
    ("home", ["compare", "latest:local:demo_digits", "0123abcd"]),
    ("option", ["compare", str(V1_DIR / "run1.json"), "0123abcd"]),
]


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(("where", "command"), READERS, ids=lambda c: c if isinstance(c, str) else c[0])
def test_a_reader_where_no_store_is_says_so_and_creates_nothing(
    where: str, command: list[str], tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    before = tree(tmp_path)
    home = tmp_path / "nowhere"
    if where == "home":
        proc = run_cli(*command, home=home)
        assert_one_line_error(proc, 2, f"no results store at {home / 'results.sqlite'}")
    else:
        missing = tmp_path / "empty" / "team.sqlite"
        proc = run_cli(*command, "--store", str(missing), home=home)
        assert_one_line_error(proc, 2, f"no results store at {missing}")
    assert tree(tmp_path) == before


def test_comparing_result_files_needs_no_store_and_creates_none(tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    proc = run_cli("compare", str(V1_DIR / "run1.json"), str(V1_DIR / "run1.json"), "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("check", str(V1_DIR / "run1.json"), "--json", home=home)
    assert proc.returncode in (0, 1), proc.stderr
    assert not home.exists()


def test_readers_read_a_store_written_by_an_earlier_release_without_changing_it(tmp_path: Path) -> None:
    """Opened read-only: nothing migrated or written, and the runs are there."""
    store = tmp_path / "old.sqlite"
    shutil.copy(V1_DIR / "results.sqlite", store)
    before = store.read_bytes()
    proc = run_cli("history", "--store", str(store), "--json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("[") and '"run_id"' in proc.stdout
    assert store.read_bytes() == before
    assert not (tmp_path / "home").exists()


def test_a_postgresql_database_without_a_store_is_not_given_one_by_a_reader(
    pg_url: str, tmp_path: Path
) -> None:
    proc = run_cli("history", "--store", pg_url, home=tmp_path)
    assert_one_line_error(proc, 2, "no results store at")
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables = conn.execute(
            POSTGRES.sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?"), ("public",)
        ).fetchone()
    assert tables == (0,)


def test_a_sqlite_file_that_holds_no_store_is_named(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    proc = run_cli("history", "--store", str(other), home=tmp_path)
    assert_one_line_error(proc, 2, f"no results store at {other}")


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("mysql://x", "--store mysql://x: unknown URL scheme"),
        ("", "--store is empty"),
        ("MISSING", "no results store at MISSING"),
    ],
    ids=["scheme", "empty", "missing"],
)
def test_store_flush_checks_its_store_as_every_command(store: str, message: str, tmp_path: Path) -> None:
    """`store flush` with nothing spooled is a reader: the store is checked, and nothing created."""
    missing = str(tmp_path / "empty" / "team.sqlite")
    (tmp_path / "empty").mkdir()
    before = tree(tmp_path)
    store, message = store.replace("MISSING", missing), message.replace("MISSING", missing)
    for args in ([], ["--json"]):
        proc = run_cli("store", "flush", "--store", store, *args, home=tmp_path / "home")
        assert_one_line_error(proc, 2, message)
        if store:
            assert_one_line_error(run_cli("history", "--store", store, home=tmp_path / "home"), 2, message)
    assert tree(tmp_path) == before
