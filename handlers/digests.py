"""The daily digest: once a day at `[digests] hour` (UTC), each person with open items or overdue status
updates gets one direct message with what `/playbook todo` shows; on Mondays the weekly digest instead,
for those who keep it on (so people who turned the daily one off still hear once a week).

Rows are the truth: storage.settings.claim moves the person's `last_digest_day` to today with a
conditional UPDATE before the message is sent, so a round that runs twice, a restart, or two bot processes
send each digest once a day. A send that fails releases the claim for a later round; a process killed
between claiming and sending loses that person's digest for the day (at most once: a missed digest is
better than a doubled one, and tomorrow's carries the same news).

bot.scheduler.Wakeup wakes the service at the next digest hour; at start-up after that hour it runs a
round at once, which catches up a digest missed while the bot was down and sends nothing twice.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from bot.context import Context
from bot.models import MattermostError
from bot.router import Router
from bot.scheduler import Wakeup
from storage import runs
from storage import settings as digests

log = logging.getLogger(__name__)

router = Router("digests")

DAY_MS = 86_400_000


class DigestService:
    def __init__(self, ctx: Context, *, hour: int | None = None, concurrency: int = 8) -> None:
        self.ctx = ctx
        self.hour = hour if hour is not None else ctx.settings.digests.hour
        self.concurrency = concurrency
        # Poll at most once an hour: another process's round needs no help, the claims are in the rows.
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=3600.0)
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        now = self.ctx.clock.now_ms()
        today_at = self._hour_of(now)
        self.wakeup.wake_at(today_at if now >= today_at else self.next_due(now))
        log.info("digests started hour=%d", self.hour)

    async def stop(self) -> None:
        self.wakeup.stop()
        async with self._lock:  # let a round in flight finish
            pass

    def next_due(self, now: int) -> int:
        """The next digest time strictly after `now`, in clock ms."""
        today_at = self._hour_of(now)
        return today_at if now < today_at else today_at + DAY_MS

    def _hour_of(self, now: int) -> int:
        midnight = now - now % DAY_MS
        return midnight + self.hour * 3_600_000

    async def _on_wake(self) -> None:
        self.ctx.tasks.spawn(self.run_due(), name="digests")

    async def run_due(self) -> int:
        """Send today's digests not sent yet (none before the digest hour); how many this call sent."""
        sent = 0
        async with self._lock:
            try:
                now = self.ctx.clock.now_ms()
                if now >= self._hour_of(now):
                    sent = await self._round(now)
            finally:
                if self.wakeup.running:
                    self.wakeup.wake_at(self.next_due(self.ctx.clock.now_ms()))
        return sent

    async def _round(self, now: int) -> int:
        date = datetime.fromtimestamp(now / 1000, tz=timezone.utc).date()
        day, monday = date.toordinal(), date.weekday() == 0
        users = await self.ctx.db.run(digests.due_users, now, readonly=True)
        claimed = await self.ctx.db.run(digests.claim, users, day, monday)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(user_id: str, kind: str) -> bool:
            async with gate:
                try:
                    todo = await self.ctx.db.run(runs.todo, user_id, now, readonly=True)
                    person = await self.ctx.users.get(user_id)  # a DM to one person: their time zone
                    text = self.ctx.render("digests/digest.md.j2", kind=kind, items=todo.items,
                                           tz=person.timezone if person else "",
                                           overdue=todo.overdue_updates, now=now)
                    await self.ctx.dms.send(user_id, text)
                    return True
                except Exception as err:
                    level = logging.WARNING if isinstance(err, MattermostError) else logging.ERROR
                    log.log(level, "digest failed user=%s kind=%s error=%r; released for a later round",
                            user_id, kind, err, exc_info=level == logging.ERROR)
                    await self.ctx.db.run(digests.release, user_id, day)
                    return False

        results = await asyncio.gather(*(one(u, k) for u, k in claimed))
        log.info("digests round day=%s due=%d claimed=%d sent=%d", date, len(users), len(claimed), sum(results))
        return sum(results)


router.job("digests", DigestService)


__all__ = ["DigestService"]
