"""A pytest plugin giving tests a real PostgreSQL: `pg_url`, and `db_url`/`db_engine` over SQLite and it.

Register it once, in tests/conftest.py:  pytest_plugins = ["tests.pg"]

Where the server comes from:
- $TEST_DATABASE_URL, if set: an existing server and a role that may CREATE DATABASE;
- else a throwaway server from Debian's binaries ($PG_BINDIR, /usr/lib/postgresql/<version>/bin, or
  initdb on PATH): initdb into a temporary folder, started on a free port on 127.0.0.1 (its unix socket in the
  same folder), started once per test session and only if a test asks for it, removed at the end.
  As root it runs as the `postgres` system user, since initdb and postgres refuse to run as root.
Each test gets a database of its own, dropped afterwards.

Where no server can be had, the tests that need one are skipped with one summary line saying why;
with CI=true (or an explicit $TEST_DATABASE_URL) they fail instead, since there it must work.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from storage.db import make_engine, migrate

ENV_URL = "TEST_DATABASE_URL"
ENV_BINDIR = "PG_BINDIR"  # where initdb and pg_ctl are, when not in Debian's place or on PATH
_SYSTEM_USER = "postgres"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@dataclass
class PgServer:
    """A PostgreSQL server that tests may create databases on."""

    admin_url: str  # SQLAlchemy URL (postgresql+psycopg://...) of a database to run CREATE DATABASE from
    version: str = ""
    started_in_s: float | None = None  # None: a server we did not start
    _stop: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _template: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def admin_connect(self) -> psycopg.Connection:
        url = make_url(self.admin_url)
        return psycopg.connect(
            host=url.query.get("host") or url.host, port=url.port, user=url.username,
            password=url.password, dbname=url.database or "postgres", autocommit=True, connect_timeout=10,
        )

    def create_database(self, template: str = "template1") -> str:
        """A new database copied from `template`; its name."""
        name = f"test_{secrets.token_hex(6)}"
        with self.admin_connect() as conn:
            # FILE_COPY (PostgreSQL 15+) copies the files instead of logging every page: 0.04 s, not 0.25 s.
            strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin_connect() as conn:
            # FORCE (PostgreSQL 13+): a test that forgot to dispose its engine must not keep it alive.
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def migrated_template(self) -> str:
        """A database with the migrations applied, made once per session, to copy for each test."""
        with self._lock:
            if self._template is None:
                name = self.create_database()
                engine = make_engine(self.url_for(name), pool_size=1)
                try:
                    migrate(engine)
                finally:
                    engine.dispose()  # a template must have no connections when it is copied
                self._template = name
            return self._template

    def close(self) -> None:
        if self._template is not None and self.started_in_s is None:
            self.drop_database(self._template)  # on a server of our own, it goes with the server
        for stop in self._stop:
            stop()


class Unavailable(Exception):
    """No PostgreSQL for this session; the message says why in one line."""


# --- a throwaway server -----------------------------------------------------------------------------

def find_bindir() -> Path | None:
    """$PG_BINDIR, else the newest Debian PostgreSQL server binaries, else those of an initdb on PATH."""
    if os.environ.get(ENV_BINDIR):
        bindir = Path(os.environ[ENV_BINDIR])
        return bindir if (bindir / "initdb").exists() else None
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


class _LocalServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        # As root the folder must be reachable by the postgres user: /tmp is, a private TMPDIR may not be.
        self.base = Path(tempfile.mkdtemp(prefix="pytest-pg-", dir="/tmp" if self.as_root else None))
        self.data = self.base / "data"
        self.port = 0
        self.running = False

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", _SYSTEM_USER, "--", *args] if self.as_root else list(args)

    def _run(self, what: str, *args: str) -> None:
        try:
            done = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120,
                                  stdin=subprocess.DEVNULL, cwd=self.base)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{what} failed: {exc}") from None
        if done.returncode != 0:
            raise Unavailable(f"{what} failed: {_last_line(done.stderr or done.stdout)}")

    def start(self) -> None:
        if self.as_root:
            try:
                user = pwd.getpwnam(_SYSTEM_USER)
            except KeyError:
                raise Unavailable(
                    f"running as root and there is no '{_SYSTEM_USER}' user to run PostgreSQL as") from None
            if shutil.which("runuser") is None:
                raise Unavailable("running as root and runuser(1) is missing")
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self._run("initdb", str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync")
        error = ""
        for _ in range(3):  # the free port may be taken between choosing it and binding it
            self.port = _free_port()
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                self._run("pg_ctl start", str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60",
                          "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", options)
            except Unavailable as exc:
                error = str(exc)
                log_tail = self._log_tail()
                if "could not bind" in log_tail or "already in use" in log_tail:
                    continue
                raise Unavailable(f"{error}; server log: {_last_line(log_tail)}") from None
            self.running = True
            return
        raise Unavailable(error)

    def _log_tail(self) -> str:
        try:
            return (self.base / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.running:
            self.running = False
            subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate",
                                     "-w"), capture_output=True, stdin=subprocess.DEVNULL, cwd=self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def start_local_server() -> PgServer:
    bindir = find_bindir()
    if bindir is None:
        where = os.environ.get(ENV_BINDIR) or "/usr/lib/postgresql/*/bin and PATH"
        raise Unavailable(f"no PostgreSQL server binaries (looked in {where}); "
                          "install Debian's postgresql, or set TEST_DATABASE_URL or PG_BINDIR")
    began = time.perf_counter()
    server = _LocalServer(bindir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    atexit.register(server.stop)  # also when the session dies before fixture teardown
    pg = PgServer(admin_url=f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres",
                  version=bindir.parent.name, started_in_s=time.perf_counter() - began)
    pg._stop.append(server.stop)
    return pg


def connect_server() -> PgServer:
    """The server for this session, or Unavailable saying why not."""
    url = os.environ.get(ENV_URL)
    if url:
        pg = PgServer(admin_url=make_url(url).set(drivername="postgresql+psycopg")
                      .render_as_string(hide_password=False))
        try:
            with pg.admin_connect() as conn:
                pg.version = str(conn.info.server_version)
        except psycopg.Error as exc:
            raise Unavailable(f"{ENV_URL} is set but unreachable: {_last_line(str(exc))}") from None
        return pg
    return start_local_server()


# --- fixtures ---------------------------------------------------------------------------------------

_STASH_REASON = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """The session's PostgreSQL server (started on first use)."""
    try:
        server = connect_server()
    except Unavailable as exc:
        reason = f"PostgreSQL not available: {exc}"
        request.config.stash[_STASH_REASON] = reason
        if in_ci() or os.environ.get(ENV_URL):
            pytest.fail(f"{reason} (required with CI=true)" if in_ci() else reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database of its own for this test: `postgresql+psycopg://...`."""
    name = pg_server.create_database()
    try:
        yield pg_server.url_for(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite (a file in tmp_path) and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'playbooks.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with the migrations applied, once on SQLite and once on PostgreSQL.

    Disposed after the test. (Use this or `db_url` in one test, not both: each is parametrized.)
    """
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'playbooks.db'}")
        migrate(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create_database(template=server.migrated_template())
    engine = make_engine(server.url_for(name))
    try:
        yield engine
    finally:
        engine.dispose()
        server.drop_database(name)


# --- reporting --------------------------------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    reason = item.config.stash.get(_STASH_REASON, None)
    longrepr = report.longrepr
    if reason and report.skipped and isinstance(longrepr, tuple) and reason in str(longrepr[2]):
        # pytest reports a fixture's skip at each test's own line, one summary line per test; placing
        # them all here folds them into the one line "SKIPPED [N] tests/pg.py: PostgreSQL not available: ...".
        report.longrepr = (__file__, None, longrepr[2])
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    # Without -rs/-ra the short summary lists no skips: say it here, once, so it never goes unnoticed.
    reason = config.stash.get(_STASH_REASON, None)
    chars = getattr(config.option, "reportchars", "") or ""
    if reason and not ({"s", "a", "A"} & set(chars)) and not in_ci():
        terminalreporter.write_line(f"SKIPPED: {reason}", yellow=True)
