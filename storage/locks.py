"""Named locks every bot process on one database honours, held across awaits (Mattermost calls in between).

    async with shared_locks(db).hold(SIDEBAR, f"{team_id}:{user_id}"):
        ...  # read, change and write something no row protects (a person's sidebar categories)

PostgreSQL: a session-level advisory lock, `pg_try_advisory_lock(namespace, key)` on a connection of its own
(autocommit, so nothing sits idle in a transaction while the lock is held). It is taken by polling with
backoff, never by a blocking `pg_advisory_lock`: a worker thread waiting on the server would starve the
database's small thread pool, and with it the release of the lock being waited for. It is released with
`pg_advisory_unlock`, and by the server itself when a bot process dies (its connection closes), so a crash
never leaves it held. At most `slots` locks are held at once per process, each holding one connection of the
pool. (A pooler in transaction mode, such as PgBouncer's, does not keep session-level advisory locks: point
the bot at PostgreSQL or at a session-mode pool.)

SQLite: one bot process per database file, so there is nothing to share: the caller's in-process lock
(`Context.locks`) is the whole lock, and `hold` returns at once.
"""
from __future__ import annotations

import asyncio
import logging
import random
import weakref
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database

log = logging.getLogger(__name__)

# Namespaces (the first int4 of the two-key form, a key space apart from the migration lock's one bigint).
SIDEBAR = 0x5342_4152  # b"SBAR": a person's sidebar categories in one team, filed read-modify-write

DEFAULT_TIMEOUT_S = 30.0


class LockTimeout(Exception):
    """The lock stayed held by someone else (another bot process) for the whole timeout."""


def key_of(name: str) -> int:
    """A stable int4 for a name (CRC-32, as a signed 32-bit integer). Two names sharing one only wait
    for each other now and then; they never both hold it."""
    value = zlib.crc32(name.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


def _backoff(attempt: int) -> float:
    return float(min(0.2, 0.005 * 2.0 ** attempt) * random.uniform(0.5, 1.5))


class SharedLocks:
    def __init__(self, db: Database, *, slots: int = 4, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.db = db
        self.timeout_s = timeout_s
        self.shared = db.engine.dialect.name == "postgresql"
        self._slots = asyncio.Semaphore(max(1, slots))

    @asynccontextmanager
    async def hold(self, namespace: int, name: str) -> AsyncIterator[None]:
        """Hold the lock `name` of `namespace` for the block; LockTimeout if it cannot be had in time."""
        if not self.shared:
            yield
            return
        key = key_of(name)
        async with self._slots:
            connection = await self._acquire(namespace, key, name)
            try:
                yield
            finally:
                # Shielded: a cancelled holder still gives the lock back (and its connection to the pool).
                await asyncio.shield(self.db.call(_release, connection, namespace, key))

    async def _acquire(self, namespace: int, key: int, name: str) -> Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        attempt = 0
        while True:
            attempt += 1
            pending = asyncio.ensure_future(self.db.call(_try_lock, self.db, namespace, key))
            try:
                connection = await asyncio.shield(pending)
            except asyncio.CancelledError:
                # The worker thread finishes anyway; if it got the lock, give it straight back.
                pending.add_done_callback(lambda done: self._release_orphan(done, namespace, key))
                raise
            if connection is not None:
                if attempt > 1:
                    log.info("shared lock taken after waiting name=%s attempts=%d", name, attempt)
                return connection
            if loop.time() >= deadline:
                raise LockTimeout(f"the lock {name!r} stayed held for {self.timeout_s:.0f} s")
            await asyncio.sleep(_backoff(attempt))

    def _release_orphan(self, done: asyncio.Future[Connection | None], namespace: int, key: int) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        connection = done.result()
        if connection is not None:
            log.info("giving back a lock taken for a cancelled waiter key=%d", key)
            asyncio.ensure_future(self.db.call(_release, connection, namespace, key))


def _try_lock(db: Database, namespace: int, key: int) -> Connection | None:
    """A connection holding the lock, or None (the connection back in the pool) when someone else holds it."""
    connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = connection.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": namespace, "b": key}).scalar()
    except BaseException:
        connection.close()
        raise
    if got:
        return connection
    connection.close()
    return None


def _release(connection: Connection, namespace: int, key: int) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": namespace, "b": key})
    except Exception:  # noqa: BLE001 - a broken connection: closing it ends the session and its locks
        log.warning("could not unlock; dropping the connection instead", exc_info=True)
        connection.invalidate()
    finally:
        connection.close()


_BY_DATABASE: weakref.WeakKeyDictionary[Database, SharedLocks] = weakref.WeakKeyDictionary()


def shared_locks(db: Database) -> SharedLocks:
    """The one SharedLocks of a Database (its slots are per process and per database)."""
    locks = _BY_DATABASE.get(db)
    if locks is None:
        locks = _BY_DATABASE[db] = SharedLocks(db)
    return locks
