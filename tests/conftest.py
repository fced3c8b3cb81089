from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.testing.models import make_mlp, make_multi_input
from edgekit.testing.pg import PgServer, pg_missing_reason, start_postgres


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own EDGEKIT_HOME so no test reads or writes the user's store."""
    home = tmp_path_factory.mktemp("edgekit-home")
    monkeypatch.setenv("EDGEKIT_HOME", str(home))
    monkeypatch.delenv("EDGEKIT_STORE", raising=False)  # nor a team store the user points at
    return home


@pytest.fixture(scope="session")
def mlp_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mlp(tmp_path_factory.mktemp("models") / "mlp.onnx")


@pytest.fixture(scope="session")
def multi_input_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_multi_input(tmp_path_factory.mktemp("models") / "multi.onnx")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server per session (per xdist worker). Missing parts skip the tests on a
    developer's machine; as root scripts/test installs them, so there a missing part is a failure."""
    reason = pg_missing_reason()
    if reason is None and importlib.util.find_spec("psycopg") is None:
        reason = "psycopg not installed (pip install 'edgekit[team]')"
    if reason is not None:
        if os.geteuid() != 0:
            pytest.skip(reason)
        pytest.fail(f"{reason}; as root scripts/test installs it, so this is a failure, not a skip")
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    name = f"edgekit_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)
