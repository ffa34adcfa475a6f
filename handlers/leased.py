"""Rows that any bot process may carry forward under a lease: run starts (handlers/runs.py StartService)
and actions on run events (handlers/actions.py ActionService).

A row is due when its backoff is over (`next_attempt_at`) and free: nobody holds its lease, the lease ran
out, or its holder is surely dead (holder_gone). `run_due()` claims each due, free row by a conditional
update (storage: `claim(session, key, seen_owner, seen_until, me, now, lease_ms)` returns the row when this
process won it) and carries them side by side; the wake-up (bot.scheduler.Wakeup) calls it at the next
due time, at start-up and every `poll_s`. Tests move the clock and call `run_due()` themselves.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from bot.context import Context
from bot.scheduler import Wakeup
from storage.db import StorageError

log = logging.getLogger(__name__)

# Holders (lease owners) of the services alive in this process: a lease of this process's pid that no
# live service holds was left by an earlier process that had the same pid (a restarted container).
_LIVE_HOLDERS: set[str] = set()


def _pid_space() -> str:
    """Where this process's pid means something: the host name, the boot and the pid namespace. Two
    containers can share a host name (host networking, a fixed `hostname:`) and both be pid 1; only a
    holder from the same boot and pid namespace may be judged by its pid."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    except OSError:
        parts.append("")
    try:
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        parts.append("")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


_PID_SPACE = _pid_space()


def holder_name(pid: int | None = None) -> str:
    """A new lease holder's name: host name, pid space, pid and a token (several services per process)."""
    return f"{socket.gethostname()[:64]}|{_PID_SPACE}|{os.getpid() if pid is None else pid}|{secrets.token_hex(6)}"


def holder_gone(holder: str) -> bool:
    """Whether the process named by a lease is surely dead: same host, boot and pid namespace, and no such
    pid (or our own pid, taken over from a process that had it). Elsewhere, and for holders named before
    the pid space was part of the name, only the lease's expiry says so."""
    parts = holder.split("|")
    if len(parts) != 4 or parts[1] != _PID_SPACE or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    if pid == os.getpid():
        return holder not in _LIVE_HOLDERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, as another user
        return False
    return False


class LeasedRow(Protocol):
    next_attempt_at: int
    lease_owner: str
    lease_until: int


Row = TypeVar("Row", bound=LeasedRow)


class LeasedRows(ABC, Generic[Row]):
    """The claiming loop shared by the services whose work is rows (see the module's docstring).
    Subclasses give `job` (the task name), `key(row)`, the storage functions `live` and `claim`, and
    `carry(row)`, which does the work and must drop the row's key from `_active` when done."""

    job = "leased-rows"
    what = "rows"  # for the log: "unfinished run starts", "pending actions"

    def __init__(self, ctx: Context, *, lease_ms: int, poll_s: float) -> None:
        self.ctx = ctx
        self.lease_ms = lease_ms
        self.holder = holder_name()
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=poll_s)
        self._active: set[str] = set()
        self._claiming = asyncio.Lock()
        _LIVE_HOLDERS.add(self.holder)

    # -- for subclasses ------------------------------------------------------------------------------
    @staticmethod
    @abstractmethod
    def key(row: Row) -> str:
        """The row's key (its lease and claim are by it)."""

    live: Callable[..., list[Row]]  # storage: (session) -> the rows still to be carried forward
    claim: Callable[..., Row | None]  # storage: (session, key, seen_owner, seen_until, me, now, lease_ms)

    @abstractmethod
    async def carry(self, row: Row) -> Any:
        """Do the row's work."""

    def forget_holder(self) -> None:
        """This service stopped: its leases count as left by a process that is gone."""
        _LIVE_HOLDERS.discard(self.holder)

    # -- the loop ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def _on_wake(self) -> None:
        self.ctx.tasks.spawn(self.run_due(), name=self.job)

    def _due(self, row: Row, now: int) -> bool:
        if self.key(row) in self._active or row.next_attempt_at > now:
            return False
        return not row.lease_owner or row.lease_until < now or holder_gone(row.lease_owner)

    async def run_due(self) -> int:
        """Carry forward every row that is due and free; how many this call took up."""
        claimed: list[Row] = []
        async with self._claiming:
            now = self.ctx.clock.now_ms()
            for row in await self.ctx.db.run(type(self).live, readonly=True):
                if not self._due(row, now):
                    continue
                won: Any = await self.ctx.db.run(type(self).claim, self.key(row), row.lease_owner,
                                                 row.lease_until, self.holder, now, self.lease_ms)
                if won is not None:
                    self._active.add(self.key(won))
                    claimed.append(won)
        try:
            await asyncio.gather(*(self.carry(row) for row in claimed))
        finally:
            await self._rearm()
        return len(claimed)

    async def _rearm(self) -> None:
        if not self.wakeup.running:
            return
        try:
            rows = await self.ctx.db.run(type(self).live, readonly=True)
        except StorageError:
            log.exception("reading %s failed; polling instead", self.what)
            rows = []
        now = self.ctx.clock.now_ms()
        due = [max(r.next_attempt_at, 0 if not r.lease_owner or holder_gone(r.lease_owner) else r.lease_until + 1)
               for r in rows if self.key(r) not in self._active]
        # Never later than a wake-up already set: an early one only finds nothing to do.
        self.wakeup.wake_at(min(due) if due else None, replace=False)
        if due and min(due) <= now:
            self.ctx.tasks.spawn(self.run_due(), name=self.job)
