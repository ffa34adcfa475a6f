"""A small wrapper over APScheduler that only wakes the bot up.

Rows are the truth (style.md): what is due lives in the database. This wrapper holds at most one
APScheduler job, "wake", set for the earliest due time the caller knows of; when it fires it calls
`on_wake` (which reloads the rows, does what is due and tells the wrapper the next time). Nothing is
kept in APScheduler's own job store, so a restart loses nothing: the caller asks the rows again.

Due times are in the injected clock's milliseconds. APScheduler runs on the wall clock, so the wake-up
is set `due - clock.now` from the wall clock's now: the same moment in production, and a far-away one
in tests that move a FakeClock and call the work themselves.

A `poll_s` ceiling makes every process look at the rows at least that often, so a reminder armed by
another bot process sharing the database is never missed for long.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.clock import Clock

log = logging.getLogger(__name__)

JOB_ID = "wake"


class Wakeup:
    def __init__(self, clock: Clock, on_wake: Callable[[], Awaitable[Any]], *, poll_s: float = 60.0) -> None:
        self.clock = clock
        self.on_wake = on_wake
        self.poll_s = poll_s
        self._scheduler: AsyncIOScheduler | None = None
        self._wake_wall: datetime | None = None  # when the pending job fires, wall clock

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    @property
    def next_wake(self) -> datetime | None:
        return self._wake_wall

    def start(self) -> None:
        # misfire_grace_time=None: a wake-up that comes late (a busy loop, a suspended laptop) still runs.
        self._scheduler = AsyncIOScheduler(timezone=timezone.utc,
                                           job_defaults={"misfire_grace_time": None, "coalesce": True,
                                                         "max_instances": 1})
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        self._wake_wall = None

    def wake_at(self, due_ms: int | None, *, replace: bool = True) -> None:
        """Wake at `due_ms` (clock ms; None = nothing due: only the poll). With replace=False, only if
        that is earlier than the wake-up already set (someone armed an earlier reminder)."""
        if self._scheduler is None:
            return
        wall_now = datetime.now(timezone.utc)
        when = wall_now + timedelta(seconds=self.poll_s)
        if due_ms is not None:
            when = min(when, wall_now + timedelta(milliseconds=max(0, due_ms - self.clock.now_ms())))
        if not replace and self._wake_wall is not None and self._wake_wall <= when:
            return
        self._wake_wall = when
        self._scheduler.add_job(self._fire, DateTrigger(run_date=when), id=JOB_ID, replace_existing=True)

    async def _fire(self) -> None:
        self._wake_wall = None
        try:
            await self.on_wake()
        except Exception:
            log.exception("wake-up failed; polling again in poll_s=%s", self.poll_s)
            self.wake_at(None, replace=False)
