"""A real PostgreSQL server on 127.0.0.1 for tests: initdb in a temp directory, own port, trust auth.

Public, like edgekit.testing.ssh: users test their team store set-up against it. Needs the server
binaries (apt-get install postgresql). PostgreSQL refuses to run as root, so as root the server runs
as the `postgres` system user that the Debian package creates, in a directory that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.lab.keys import free_port

PG_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"  # the database role initdb creates, whatever OS user runs the server
START_TIMEOUT_S = 60


class PgServerError(EdgekitError):
    """The test PostgreSQL server cannot be found, set up or started."""


def find_pg_bin() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin, else the directory of `initdb` on PATH."""
    candidates = sorted(Path("/").glob(PG_GLOB.lstrip("/")), key=_version_key)
    candidates = [c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()]
    if candidates:
        return candidates[-1]
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise PgServerError(
        f"PostgreSQL server not installed: no initdb/pg_ctl in {PG_GLOB} or on PATH "
        "(apt-get install postgresql; scripts/test installs it when run as root)"
    )


def _version_key(path: Path) -> tuple[int, ...]:
    version = path.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def pg_missing_reason() -> str | None:
    try:
        find_pg_bin()
    except PgServerError as exc:
        return exc.message
    return None


def _run_as() -> list[str]:
    """The command prefix that runs the server binaries as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PgServerError(
            f"running as root, and there is no {SUPERUSER!r} system user to run PostgreSQL as "
            "(the Debian postgresql package creates it)"
        ) from None
    return ["runuser", "-u", SUPERUSER, "--"]


@dataclass
class PgServer:
    directory: Path  # removed by stop()
    bin_dir: Path
    port: int
    prefix: list[str]
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self._sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _sql(self, statement: str) -> None:
        psql = self.bin_dir / "psql"
        if not psql.exists():
            psql = Path(shutil.which("psql") or "psql")
        self._run(
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(), "-c", statement],
            f"psql {statement!r}",
        )

    def _run(self, command: list[str], what: str) -> None:
        proc = subprocess.run(
            [*self.prefix, *command], cwd=self.directory, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            detail = " ".join((proc.stderr or proc.stdout).split())
            raise PgServerError(f"{what} failed (exit {proc.returncode}): {detail}", log=str(self.log))

    def halt(self) -> None:
        """Shut the server down (fast: open connections are terminated) and keep its data, as a
        restart or an outage would; resume() starts it again on the same port."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                "pg_ctl stop",
            )

    def resume(self) -> None:
        """Start the server halt() stopped; returns when it accepts connections."""
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ],
            "pg_ctl start",
        )

    def stop(self) -> None:
        try:
            self.halt()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres() -> PgServer:
    """initdb in a new temp directory and start the server on 127.0.0.1 (and a unix socket in that
    directory); call stop() to shut it down and remove the directory."""
    bin_dir = find_pg_bin()
    prefix = _run_as()
    # Not under pytest's tmp_path: that is mode 0700 under root's tree, closed to the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="edgekit-pg-"))
    server = PgServer(directory, bin_dir, free_port(), prefix)
    try:
        server.socket_dir.mkdir()
        if prefix:
            account = pwd.getpwnam(SUPERUSER)
            for path in (directory, server.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        server._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(server.data_dir),
                f"--username={SUPERUSER}",
                "--auth=trust",  # tests only: the server listens on loopback and a private socket
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            "initdb",
        )
        settings = {
            "listen_addresses": f"'{server.host}'",
            "port": str(server.port),
            "unix_socket_directories": f"'{server.socket_dir}'",
            "fsync": "off",  # a throw-away cluster: durability is not what is tested
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (server.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        server.resume()
    except BaseException:
        server.stop()
        raise
    return server
