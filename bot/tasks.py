"""Tracked follow-up tasks, keyed locks, coalesced refreshes and group commits.

Slow work (many Mattermost calls) runs after the HTTP answer, in a task the bot tracks: its errors are
logged and reported, shutdown waits for it, and tests `await tasks.drain()` instead of sleeping.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Op = TypeVar("Op")
Result = TypeVar("Result")


class Tasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: dict[str, bool] = {}  # key -> dirty again while running
        self.failures = 0

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str,
              on_error: Callable[[BaseException], Awaitable[None]] | None = None) -> asyncio.Task[Any]:
        async def guarded() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - a follow-up must never die silently
                self.failures += 1
                log.exception("follow-up failed task=%s", name)
                if on_error is not None:
                    try:
                        await on_error(exc)
                    except Exception:
                        log.exception("reporting a failed follow-up failed task=%s", name)
                return None

        task = asyncio.create_task(guarded(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def coalesce(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` soon; calls while it runs make it run once more afterwards, not once per call.

        Used to refresh a run's overview post: twenty clicks in a burst cost two edits, not twenty.
        """
        if key in self._pending:
            self._pending[key] = True
            return
        self._pending[key] = False

        async def loop() -> None:
            try:
                while True:
                    self._pending[key] = False
                    await work()
                    if not self._pending.get(key):
                        break
            finally:
                self._pending.pop(key, None)

        self.spawn(loop(), name=f"coalesce:{key}")

    async def drain(self) -> None:
        """Wait until no follow-up is running (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)


class KeyedLocks:
    """One asyncio.Lock per key, used as `async with locks(key):`; a key's lock is dropped once nobody
    holds or waits for it, so a long-running bot does not keep one per checklist it ever saw."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Batcher(Generic[Op, Result]):
    """Group commit: calls that arrive while a batch is being written wait for the next one, which
    writes them all at once.

    `await batcher.submit(op)` returns that op's result. `write(ops)` gets the ops in arrival order and
    returns one result per op (an Exception instance in a result's place is raised to that caller
    only). Under a burst, twenty clicks cost two transactions instead of twenty, which matters most on
    SQLite, where writers take turns.
    """

    def __init__(self, write: Callable[[list[Op]], Awaitable[list[Result | Exception]]], tasks: Tasks, *,
                 most: int = 200, name: str = "batch") -> None:
        self._write = write
        self._tasks = tasks
        self._most = most
        self._name = name
        self._pending: list[tuple[Op, asyncio.Future[Result]]] = []
        self._running = False

    async def submit(self, op: Op) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        if not self._running:
            self._running = True
            self._tasks.spawn(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:self._most], self._pending[self._most:]
                try:
                    results = await self._write([op for op, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - every waiter hears about it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running = False
