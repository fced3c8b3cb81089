"""Fixtures for the SSH tests: one real sshd on 127.0.0.1 per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgekit.testing.ssh import Sshd, sshd_missing_reason, start_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if sshd_missing_reason() is not None:
        pytest.skip(str(sshd_missing_reason()))
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()
