"""storage/locks.py: a named lock two bot processes (two engines here) on one PostgreSQL both honour, that
a dead holder never keeps; on SQLite (one process per file) it costs nothing."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from storage.db import Database, make_engine
from storage.locks import SIDEBAR, LockTimeout, SharedLocks, key_of, shared_locks

pytest_plugins = ["tests.pg"]


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first, second = Database(make_engine(pg_url)), Database(make_engine(pg_url))
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def advisory_holders(pg_url: str, name: str) -> list[int]:
    url = make_url(pg_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database,
                         autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                            "AND classid::int = %s AND objid::int = %s", (SIDEBAR, key_of(name))).fetchall()
    return [int(r[0]) for r in rows]


def test_keys_are_stable_signed_int4() -> None:
    assert key_of("team:alice") == key_of("team:alice") != key_of("team:bob")
    assert all(-(2 ** 31) <= key_of(f"n{i}") < 2 ** 31 for i in range(2000))


async def test_a_lock_held_by_one_process_keeps_the_other_out_until_released(two, pg_url: str) -> None:
    a, b = SharedLocks(two[0]), SharedLocks(two[1], timeout_s=0.3)
    async with a.hold(SIDEBAR, "eng:alice"):
        assert len(advisory_holders(pg_url, "eng:alice")) == 1
        with pytest.raises(LockTimeout):
            async with b.hold(SIDEBAR, "eng:alice"):
                pytest.fail("both processes held the lock")
        async with b.hold(SIDEBAR, "eng:bob"):  # another person's lock is free
            pass
    assert advisory_holders(pg_url, "eng:alice") == []
    async with b.hold(SIDEBAR, "eng:alice"):
        assert len(advisory_holders(pg_url, "eng:alice")) == 1


async def test_waiters_take_turns(two) -> None:
    a, b = SharedLocks(two[0]), SharedLocks(two[1])
    inside: list[str] = []
    order: list[str] = []

    async def work(locks: SharedLocks, who: str) -> None:
        async with locks.hold(SIDEBAR, "eng:alice"):
            inside.append(who)
            assert len(inside) == 1, inside
            await asyncio.sleep(0)  # give the other every chance to barge in
            order.append(who)
            inside.remove(who)

    await asyncio.gather(*(work(a if n % 2 else b, f"w{n}") for n in range(8)))
    assert sorted(order) == sorted(f"w{n}" for n in range(8))


async def test_a_holder_that_dies_frees_the_lock(two, pg_url: str) -> None:
    a, b = SharedLocks(two[0]), SharedLocks(two[1])
    async with a.hold(SIDEBAR, "eng:alice"):
        [pid] = advisory_holders(pg_url, "eng:alice")
        url = make_url(pg_url)
        with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database,
                             autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))  # as when the bot process is killed
        async with b.hold(SIDEBAR, "eng:alice"):
            assert advisory_holders(pg_url, "eng:alice") != [pid]
    # The first holder's release met a dead connection: it dropped it and the pool still works.
    async with a.hold(SIDEBAR, "eng:alice"):
        pass


async def test_a_cancelled_holder_gives_the_lock_back(two, pg_url: str) -> None:
    a = SharedLocks(two[0])
    entered = asyncio.Event()

    async def holder() -> None:
        async with a.hold(SIDEBAR, "eng:alice"):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(holder())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert advisory_holders(pg_url, "eng:alice") == []


async def test_sqlite_needs_no_shared_lock(tmp_path: Path) -> None:
    db = Database(make_engine(f"sqlite:///{tmp_path / 'bot.db'}"))
    try:
        locks = shared_locks(db)
        assert shared_locks(db) is locks and not locks.shared
        async with locks.hold(SIDEBAR, "eng:alice"), locks.hold(SIDEBAR, "eng:alice"):
            pass  # nothing is taken: the caller's in-process lock is the lock
    finally:
        await db.close()
