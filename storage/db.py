"""The engine, sessions, migrations at start-up, and the bridge that keeps the event loop off the database.

SQLite (the default, one file) and PostgreSQL behave the same to callers:

    engine = make_engine(settings.storage.url)
    migrate(engine)                      # Alembic `upgrade head`; safe when two processes start at once
    db = Database(engine)
    run = await db.run(load_run, run_id) # load_run(session, run_id) runs in a worker thread, in a transaction

SQLite is set up for a bot that writes from several threads: WAL (readers never wait for the writer),
a busy timeout (a writer waits for another instead of failing at once), foreign keys on (SQLite leaves
them off per connection, and the tables rely on ON DELETE CASCADE), and `BEGIN IMMEDIATE` for write
transactions: a deferred transaction that reads and then writes fails with "database is locked" without
waiting when another connection wrote in between, whereas an immediate one takes the write lock up front
and so waits its turn under the busy timeout.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_URL = "sqlite:///data/playbooks.db"
# What a failing database raises through Database.run (and opening one); callers above storage/ catch
# this name, never SQLAlchemy's.
StorageError = SQLAlchemyError
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed 64-bit key will do; every bot process sharing one PostgreSQL database uses the same one.
_MIGRATION_LOCK_KEY = 0x706C_6179_626F_6F6B  # b"playbook"
# Execution option choosing how SQLite begins a transaction: DEFERRED (the default) or IMMEDIATE.
_SQLITE_BEGIN = "playbooks_sqlite_begin"
# SQLSTATEs worth retrying the whole transaction for: serialization_failure, deadlock_detected.
_PG_CONFLICT_STATES = frozenset({"40001", "40P01"})
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def normalize_url(url: str | URL | None) -> URL:
    """The URL to connect to: the default SQLite file when empty, psycopg 3 for any PostgreSQL URL."""
    parsed = make_url(url or DEFAULT_URL)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        # psycopg (3) is the driver we ship; plain postgresql:// would pick psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_in_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


def make_engine(url: str | URL | None = None, *, pool_size: int = 10, busy_timeout_ms: int = 5000,
                echo: bool = False) -> Engine:
    """An engine for `url` (default `sqlite:///data/playbooks.db`, relative to the working directory).

    SQLite: the file's folder is created; WAL, busy_timeout and foreign_keys are set on every connection.
    An in-memory database (`sqlite://`) is one shared connection, so use it from one thread at a time.
    PostgreSQL: pooled connections, checked before use so a restarted server costs no failed request.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms, echo=echo)
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size // 2, pool_pre_ping=True,
                         pool_recycle=1800, echo=echo)


def _make_sqlite_engine(url: URL, *, pool_size: int, busy_timeout_ms: int, echo: bool) -> Engine:
    memory = sqlite_in_memory(url)
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
    if memory:
        engine = create_engine(url, poolclass=StaticPool, connect_args=connect_args, echo=echo)
    else:
        database = url.database or ""
        if not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args,
                               echo=echo)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module (it would BEGIN late, only before DML,
        # and never for DDL); `_on_begin` emits our own BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                _set_wal(cursor, busy_timeout_ms)
                # With WAL, NORMAL is still safe against corruption; a power cut may lose the last commit.
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    return engine


def _set_wal(cursor: sqlite3.Cursor, busy_timeout_ms: int) -> None:
    # The switch to WAL (once in a file's life; the mode then sticks) answers SQLITE_BUSY at once, without
    # the busy handler, while another connection opens the same new file: two processes starting together.
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def writing(engine: Engine) -> Engine:
    """`engine` for a transaction that will write: on SQLite it begins with BEGIN IMMEDIATE.

    Plain connections (`engine.connect()`, `engine.begin()`) begin a deferred transaction, which only
    takes the write lock at the first write, and then fails at once with "database is locked" if another
    connection wrote since this one first read. Taking the lock up front instead waits its turn under the
    busy timeout. PostgreSQL ignores the option.
    """
    return engine.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})


@contextmanager
def session_scope(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back if it raises.

    Objects stay usable after the block (no expiry on commit), so they can be returned to async code.
    `readonly=True`: nothing is committed, and on SQLite the reader runs beside a writer instead of
    queueing for the write lock.
    """
    session = Session(engine if readonly else writing(engine), expire_on_commit=False)
    try:
        yield session
        if not readonly:
            session.commit()
        # A read-only session just closes: its connection's transaction ends there, and objects it
        # loaded stay loaded (a rollback would expire them).
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` means "another transaction got in the way; running this one again may succeed"."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_CONFLICT_STATES:
        return True
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        message = str(orig).lower()
        return "database is locked" in message or "database table is locked" in message
    return False


# --- migrations -------------------------------------------------------------------------------------

def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic's configuration without an ini file, so it works from any working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def migrate(target: Engine | str | URL | None = None, revision: str = "head") -> None:
    """Bring the database at `target` (an engine or a URL; default the SQLite file) up to `revision`.

    The whole upgrade is one transaction. On PostgreSQL it first takes an advisory lock, so when two
    bot processes start at once the second waits, then finds the schema current and does nothing; on
    SQLite the transaction's BEGIN IMMEDIATE has the same effect.
    """
    engine = target if isinstance(target, Engine) else make_engine(target, pool_size=1)
    try:
        with writing(engine).connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            raw: Any = connection.connection.driver_connection
            if sqlite:
                # SQLite's batch migrations rebuild a table (copy, DROP, rename). With foreign keys on,
                # dropping `runs` cascade-deletes every checklist, item, participant and timeline event of
                # every run. The pragma is ignored inside a transaction: switch it before BEGIN, check
                # the keys before COMMIT, and switch it back before the connection returns to the pool.
                raw.execute("PRAGMA foreign_keys = OFF")
            try:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                           {"key": _MIGRATION_LOCK_KEY})
                    config = alembic_config()
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise RuntimeError(f"the migration left rows whose parent is gone: {broken[:5]}")
            finally:
                if sqlite:
                    raw.execute("PRAGMA foreign_keys = ON")
    finally:
        if engine is not target:
            engine.dispose()


class StorageUnavailable(Exception):
    """The database at the configured URL cannot be opened."""


def read_existing(url: str, read: Callable[[Session], T], missing: T) -> T:
    """`read(session)` on the database at `url` for a command outside a running bot (`python -m bot check`,
    `export-playbook`): read-only, and a SQLite file that does not exist is not created (`missing` then, as
    for a database not migrated that far). StorageUnavailable when it cannot be opened at all."""
    try:
        parsed = normalize_url(url)
    except (SQLAlchemyError, ValueError) as err:
        raise StorageUnavailable(str(err)) from err
    if parsed.get_backend_name() == "sqlite" and not sqlite_in_memory(parsed):
        database = parsed.database or ""
        if not database.startswith("file:") and not Path(database).expanduser().is_file():
            return missing
    try:
        engine = make_engine(url, pool_size=1)
    except (SQLAlchemyError, OSError) as err:
        raise StorageUnavailable(str(err)) from err
    try:
        with session_scope(engine, readonly=True) as session:
            return read(session)
    except SQLAlchemyError:
        return missing  # not migrated that far yet
    finally:
        engine.dispose()


# --- the async bridge -------------------------------------------------------------------------------

def default_backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): 10 ms doubling to 0.5 s, jittered."""
    return min(0.5, 0.01 * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def describe(exc: BaseException) -> str:
    """A database error in a line, without SQLAlchemy's statement dump and links."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0][:300]


def open_database(url: str | URL | None) -> Database:
    """Open and migrate the database at `url`; StorageError (with a plain reason) when that fails, e.g. a
    folder the bot may not write, a full disk, or a server that refuses the connection."""
    try:
        engine = make_engine(url)
        migrate(engine)
    except OSError as err:
        raise SQLAlchemyError(f"cannot create the database's folder: {err}") from err
    return Database(engine)


class Database:
    """Runs blocking database work in a bounded pool of threads, so the event loop never waits on it.

    `await db.run(fn, *args)` calls `fn(session, *args)` in a worker thread inside one transaction
    (committed when `fn` returns, rolled back if it raises) and returns what `fn` returned. When the
    transaction loses to a concurrent one (SQLite "database is locked", PostgreSQL serialization failure
    or deadlock), it is rolled back and `fn` runs again in a new one, up to `attempts` times in all; so
    `fn` should touch nothing but the session. If the awaiting task is cancelled, the thread still
    finishes its transaction.
    """

    def __init__(self, engine: Engine, *, max_workers: int | None = None, attempts: int = 5,
                 backoff: Callable[[int], float] = default_backoff) -> None:
        if max_workers is None:
            # One shared connection (in-memory SQLite) must not be used by two threads at once.
            size = getattr(engine.pool, "size", None)
            max_workers = 1 if isinstance(engine.pool, StaticPool) else min(8, size() if size else 8)
        self.engine = engine
        self.attempts = max(1, attempts)
        self._backoff = backoff
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="db")

    @classmethod
    def from_url(cls, url: str | URL | None = None, **kwargs: Any) -> Database:
        return cls(make_engine(url), **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, retry_on_conflict: bool = True,
                  readonly: bool = False) -> T:
        """`fn(session, *args)` in a worker thread and a transaction; its result."""
        attempt = 1
        while True:
            try:
                return await self.call(self._transaction, fn, args, readonly)
            except DBAPIError as exc:
                if not (retry_on_conflict and attempt < self.attempts and is_conflict(exc)):
                    raise
                delay = self._backoff(attempt)
                log.info("db conflict, retrying fn=%s attempt=%d delay_s=%.3f error=%s",
                         getattr(fn, "__qualname__", fn), attempt, delay, exc.orig)
                attempt += 1
                await asyncio.sleep(delay)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Any blocking `fn(*args)` in the database's thread pool (no session, no retry)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, functools.partial(context.run, fn, *args))

    async def migrate(self) -> None:
        await self.call(migrate, self.engine)

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...], readonly: bool) -> T:
        with session_scope(self.engine, readonly=readonly) as session:
            return fn(session, *args)

    async def close(self) -> None:
        """Waits for running work, then closes the pool's connections."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
