"""A throwaway PostgreSQL server for the session (the ``postgres`` fixture): ``initdb`` into
a temporary folder, ``pg_ctl start`` on a free loopback port and a unix socket in that folder,
password authentication (so a wrong password is refused), stopped and removed at the end.
``metadata_url`` gives the app's metadata database on SQLite and then on that server.

tests/conftest.py imports both fixtures. Not a conftest.py of its own: tests import
tests/conftest.py as ``conftest``, and a second conftest.py would take that module name.

The server binaries come from PATH or ``/usr/lib/postgresql/*/bin`` (Debian's
``postgresql`` package; ``make test`` installs it when missing). ``initdb`` refuses to run
as root, so as root the server runs as the ``postgres`` system user that package creates.
Missing binaries fail the tests that need them with a message: they never skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_USER = "persona"
_INSTALL = ("Install the server (Debian/Ubuntu, as root): apt-get install -y postgresql "
            "(`make test` does this when it runs as root), or put initdb and pg_ctl on PATH.")


@dataclass(frozen=True)
class PostgresServer:
    """A running server: ``url(database)`` over TCP, ``socket_url(database)`` over the
    unix socket, ``create_database(name)`` for a fresh database."""

    host: str
    port: int
    socket_dir: Path
    user: str
    password: str

    def url(self, database: str = "postgres", password: str | None = None,
            driver: str = "postgresql") -> str:
        secret = self.password if password is None else password
        return f"{driver}://{self.user}:{secret}@{self.host}:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        return (f"postgresql://{self.user}:{self.password}@/{database}"
                f"?host={self.socket_dir}&port={self.port}")

    def create_database(self, name: str) -> str:
        """A new empty database ``name`` (dropped first if a test made it before); its URL."""
        engine = sa.create_engine(self.url(driver="postgresql+psycopg"),
                                  isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as con:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            con.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)


def _binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres: PATH first, then Debian's layout
    (the newest version)."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(os.path.realpath(found)).parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: (p.parent.name.isdigit() and
                                                  int(p.parent.name)), reverse=True)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or "
                f"in /usr/lib/postgresql/*/bin. {_INSTALL}", pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _runner() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs the server's programs, and the account they run as."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("These tests run as root, and initdb refuses to: the server runs as the "
                    "'postgres' system user, which does not exist here. Debian's postgresql "
                    "package creates it (apt-get install -y postgresql); or run the tests as "
                    "a user other than root.", pytrace=False)
    runuser = shutil.which("runuser")  # util-linux: on every Debian and Ubuntu
    if runuser is None:
        pytest.fail("Running as root, but runuser (util-linux) is not available to start "
                    "PostgreSQL as the 'postgres' user.", pytrace=False)
    return [runuser, "-u", "postgres", "--"], account


def _run(prefix: list[str], args: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(prefix + args, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        pytest.fail(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
                    f"{tail}", pytrace=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session's own (see the module docstring)."""
    bin_dir = _binaries()
    prefix, account = _runner()
    # Not under pytest's tmp folder: that one is private to root (0700), and the server may
    # run as another user; as root /tmp itself, which that user can reach whatever TMPDIR
    # says (and short: a unix socket path has at most 107 bytes). mkdtemp's folder is 0700,
    # then given to that user.
    where = "/tmp" if account is not None and os.path.isdir("/tmp") else None
    base = Path(tempfile.mkdtemp(prefix="persona-pg-", dir=where))
    data, log = base / "data", base / "server.log"
    password = secrets.token_hex(12)
    (base / "pwfile").write_text(password + "\n")
    if account is not None:
        for path in (base, base / "pwfile"):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = _free_port()
    started = False
    try:
        _run(prefix, [str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER,
                      "--pwfile", str(base / "pwfile"), "--auth", "scram-sha-256",
                      "-E", "UTF8", "--locale", "C", "--no-sync"], "initdb")
        options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC")
        _run(prefix, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                      "-t", "60", "-o", options, "start"], "pg_ctl start", log)
        started = True
        yield PostgresServer("127.0.0.1", port, base, PG_USER, password)
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                                         "immediate", "-w", "stop"],
                               capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The app's metadata database URL as ``dashapp.db.database_url`` makes it: embedded SQLite
    in ``tmp_path``, and a fresh PostgreSQL database given as ``DATABASE_URL=postgresql://``
    would be (tests using it run once on each)."""
    from dashapp.db import database_url

    if request.param == "sqlite":
        return database_url(None, tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres")
    return database_url(server.create_database(f"metadata_{next(_databases)}"), tmp_path)
