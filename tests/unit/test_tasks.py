"""Follow-up tasks, coalescing, keyed locks, group commit and the edit watch."""
from __future__ import annotations

import asyncio

import pytest

from bot.posts import EditWatch
from bot.tasks import Batcher, KeyedLocks, Tasks


async def test_batcher_writes_a_burst_in_one_call_and_answers_each_caller() -> None:
    tasks = Tasks()
    calls: list[list[int]] = []
    gate = asyncio.Event()

    async def write(ops: list[int]) -> list[object]:
        calls.append(list(ops))
        await gate.wait()
        return [ValueError(f"bad {op}") if op == 3 else op * 10 for op in ops]

    batcher = Batcher(write, tasks)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)  # let the first batch start writing
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 0
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results[:2] == [10, 20] and results[3:] == [40, 50]
    assert isinstance(results[2], ValueError) and str(results[2]) == "bad 3"
    # The five that arrived while the first was written shared one transaction.
    assert calls == [[0], [1, 2, 3, 4, 5]]
    await tasks.drain()


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    tasks = Tasks()
    fail = True

    async def write(ops: list[str]) -> list[str]:
        if fail:
            raise RuntimeError("database is down")
        return [op.upper() for op in ops]

    batcher = Batcher(write, tasks)
    with pytest.raises(RuntimeError, match="database is down"):
        await batcher.submit("a")
    fail = False
    assert await batcher.submit("b") == "B"
    await tasks.drain()


async def test_coalesce_runs_once_more_after_calls_made_while_it_ran() -> None:
    tasks = Tasks()
    runs = 0
    started = asyncio.Event()
    release = asyncio.Event()

    async def work() -> None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()

    tasks.coalesce("k", work)
    await started.wait()
    for _ in range(10):
        tasks.coalesce("k", work)
    release.set()
    await tasks.drain()
    assert runs == 2


async def test_keyed_locks_serialise_one_key_and_forget_idle_keys() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(name: str, key: str) -> None:
        async with locks(key):
            order.append(f"{name}+")
            await asyncio.sleep(0)
            order.append(f"{name}-")

    await asyncio.gather(hold("a", "x"), hold("b", "x"), hold("c", "y"))
    assert order.index("a-") < order.index("b+")
    assert len(locks) == 0


async def test_edit_watch_waits_for_the_expected_state_and_gives_up_after_the_timeout() -> None:
    watch = EditWatch()
    watch.expect("post", "s2")
    waiter = asyncio.create_task(watch.wait("post", 5))
    watch.seen("post", "s1")  # an older state: keep waiting
    await asyncio.sleep(0)
    assert not waiter.done()
    watch.seen("post", "s2")
    assert await waiter is True
    assert watch.last("post") == "s2" and watch.sent("post") == "s2"
    watch.expect("post", "s3")
    assert await watch.wait("post", 0.01) is False  # WebSocket down: slower, never stuck
