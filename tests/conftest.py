from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.testing import make_mlp, make_multi_input


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own EDGEKIT_HOME so no test reads or writes the user's store."""
    home = tmp_path_factory.mktemp("edgekit-home")
    monkeypatch.setenv("EDGEKIT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def mlp_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mlp(tmp_path_factory.mktemp("models") / "mlp.onnx")


@pytest.fixture(scope="session")
def multi_input_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_multi_input(tmp_path_factory.mktemp("models") / "multi.onnx")
