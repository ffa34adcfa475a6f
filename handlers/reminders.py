"""Reminders: status updates that are due, and retrospectives still to write.

The rows (storage.models.Reminder, one per run and kind) are the truth; bot.scheduler.Wakeup only wakes
this service at the earliest due time. `run_due()` claims every reminder due at the clock's now with a
conditional UPDATE (storage.reminders.claim_due), so a wake-up that runs twice, or two bot processes on
one PostgreSQL, post each reminder once. A reminder whose post fails is released and retried a minute
later. After a restart, `start()` reads the earliest due time again; one already in the past fires at
once, late, and the next comes one interval after that (never a burst of the ones missed).

Claiming and marking sent are two steps. The claim only leases the reminder (due again after
storage.reminders.LEASE_S); once posted, `mark_sent` arms the next one. So a process killed between claiming and
posting delays that reminder by the lease instead of losing it. The one window left is a kill after a
post and before its round's bookkeeping: that reminder is posted again after the lease (at least
once, rather than at most once: a repeated reminder is better than a missing one).

Reminder posts keep their buttons until answered: an update, finishing the run, or publishing or
cancelling the retrospective edits every unanswered reminder post of the run (`answered`, from the
ids on the row) to say what happened, without buttons. (A post that raced an update, posted while the
update was being stored, keeps its buttons; they still work.)

Status reminders repeat every interval while nobody posts an update, each saying how late the update
is: at most one per interval, since claiming moves the reminder a whole interval past now.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from bot.actions import CancelRetro, FillRetro, PostUpdate, Snooze, button
from bot.context import Context
from bot.domain.durations import format_duration
from bot.models import MattermostError
from bot.router import Router
from bot.scheduler import Wakeup
from handlers.announce import permalink
from storage import reminders as rows
from storage import runs
from storage.reminders import Claimed

log = logging.getLogger(__name__)

router = Router("reminders")

SNOOZES = ((900, "15m"), (3600, "1h"), (4 * 3600, "4h"), (86400, "1d"))
RETRY_S = 60  # a reminder whose post failed (Mattermost down) is tried again this much later
ANSWERED_COLOR = "#8a8f98"  # an answered reminder, greyed like an open item


class ReminderService:
    def __init__(self, ctx: Context, *, batch: int = 500, concurrency: int = 16, poll_s: float = 60.0) -> None:
        self.ctx = ctx
        self.batch = batch
        self.concurrency = concurrency
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=poll_s)
        self._lock = asyncio.Lock()
        self.sent = 0  # reminders posted by this process (bench, health)

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        self.wakeup.wake_at(await self.ctx.db.run(rows.next_due, readonly=True))
        log.info("reminders started")

    async def stop(self) -> None:
        self.wakeup.stop()
        async with self._lock:  # let a round in flight finish its posts and bookkeeping
            pass

    def changed(self, due_ms: int | None) -> None:
        """A reminder was armed or moved to `due_ms`: wake earlier if need be."""
        if due_ms is not None:
            self.wakeup.wake_at(due_ms, replace=False)

    async def run_started(self, run_id: str) -> None:
        run = await self.ctx.db.run(runs.get_run, run_id, readonly=True)
        if run is None or not run.status_updates_enabled or run.reminder_interval_s <= 0:
            return
        due = run.created_at + run.reminder_interval_s * 1000
        await self.ctx.db.run(rows.arm, run_id, rows.STATUS, due, run.reminder_interval_s)
        self.changed(due)

    async def _on_wake(self) -> None:
        # The APScheduler job returns at once: the next wake-up may be due while this round still
        # posts, and a job still running would make APScheduler skip it. run_due's lock queues rounds.
        self.ctx.tasks.spawn(self.run_due(), name="reminders")

    async def run_due(self) -> int:
        """Post every reminder due now; how many this call posted. Then set the next wake-up."""
        posted = 0
        async with self._lock:
            try:
                while True:
                    now = self.ctx.clock.now_ms()
                    claimed = await self.ctx.db.run(rows.claim_due, now, self.batch)
                    if not claimed:
                        break
                    posted += await self._deliver(claimed, now)
                    if len(claimed) < self.batch and self.ctx.clock.now_ms() == now:
                        break
            finally:
                await self._rearm()
        self.sent += posted
        return posted

    async def _rearm(self) -> None:
        if not self.wakeup.running:
            return
        try:
            due = await self.ctx.db.run(rows.next_due, readonly=True)
        except Exception:
            log.exception("reading the next due reminder failed; polling instead")
            due = None
        self.wakeup.wake_at(due)

    async def _deliver(self, claimed: list[Claimed], now: int) -> int:
        names = await self.ctx.users.names(sorted({c.run.owner_id for c in claimed if c.run}))
        gate = asyncio.Semaphore(self.concurrency)
        sent: list[tuple[Claimed, str, str, dict[str, Any]]] = []
        failed: list[Claimed] = []

        async def one(c: Claimed) -> None:
            async with gate:
                try:
                    post_id, summary, details = await self._post(c, names, now)
                except MattermostError as err:
                    log.warning("reminder post failed run=%s kind=%s status=%s id=%s; retry in %ds",
                                c.run_id, c.kind, err.status, err.error_id, RETRY_S)
                    failed.append(c)
                    return
                except Exception:
                    log.exception("reminder failed run=%s kind=%s", c.run_id, c.kind)
                    failed.append(c)
                    return
                sent.append((c, post_id, summary, {**details, "post_id": post_id, "kind": c.kind}))

        await asyncio.gather(*(one(c) for c in claimed))
        if sent or failed:
            owned = await self.ctx.db.run(rows.bookkeep, sent, failed, now, now + RETRY_S * 1000)
            for (c, post_id, _, _), mine in zip(sent, owned, strict=True):
                if not mine:
                    log.info("reminder moved while posting run=%s kind=%s post=%s", c.run_id, c.kind, post_id)
        return len(sent)

    async def answered(self, run_id: str, kind: str, outcome: str, actor_id: str = "") -> None:
        """The reminder was answered (outcome: updated, finished, published, cancelled): its last post
        loses its buttons and says so."""
        post_ids = await self.ctx.db.run(rows.take_posts, run_id, kind)
        if not post_ids:
            return
        run = await self.ctx.db.run(runs.get_run, run_id, readonly=True)
        actor = (await self.ctx.users.names([actor_id])).get(actor_id, "") if actor_id else ""
        text = self.ctx.render("reminders/answered.md.j2", kind=kind, outcome=outcome,
                               name=run.name if run else "", actor=actor)
        await asyncio.gather(*(self._retire(post_id, text) for post_id in post_ids))

    async def _retire(self, post_id: str, text: str) -> None:
        # The reminder's text stays (past ServiceSettings.PostEditTimeLimit Mattermost refuses to change
        # it); its attachment, buttons and all, gives way to how it was answered.
        props = {"attachments": [{"fallback": text, "text": text, "color": ANSWERED_COLOR}]}
        try:
            await self.ctx.gateway.update_post(post_id, None, props)
        except MattermostError as err:
            log.warning("editing an answered reminder failed post=%s status=%s id=%s", post_id, err.status,
                        err.error_id)

    async def _post(self, c: Claimed, names: dict[str, str], now: int) -> tuple[str, str, dict[str, Any]]:
        ctx = self.ctx
        run = c.run
        assert run is not None
        owner = names.get(run.owner_id, "")
        if c.kind == rows.STATUS:
            expected = (c.last_update_at or run.created_at) + run.reminder_interval_s * 1000
            late_ms = max(0, now - expected)
            late = format_duration(timedelta(seconds=late_ms // 60000 * 60)) if late_ms >= 60000 else ""
            text = ctx.render("reminders/status_due.md.j2", owner=owner, name=run.name, late=late,
                              count=c.sent_count)
            props = {"attachments": [{"fallback": text, "actions": status_buttons(ctx, run.id)}]}
            post = await ctx.gateway.create_post(run.channel_id, text, props=props)
            if c.follower_ids:
                dm = ctx.render("reminders/status_overdue_dm.md.j2", name=run.name, owner=owner, late=late,
                                link=permalink(ctx, run.team_id, post.id))
                await asyncio.gather(*(self._dm(uid, dm) for uid in c.follower_ids if uid != run.owner_id))
            return post.id, f"Status update reminder{f' ({late} late)' if late else ''}", {"late_s": late_ms // 1000}
        text = ctx.render("reminders/retro_due.md.j2", owner=owner, name=run.name, count=c.sent_count)
        props = {"attachments": [{"fallback": text, "actions": retro_buttons(ctx, run.id)}]}
        post = await ctx.gateway.create_post(run.channel_id, text, props=props)
        return post.id, "Retrospective reminder", {}

    async def _dm(self, user_id: str, text: str) -> None:
        try:
            await self.ctx.dms.send(user_id, text)
        except MattermostError as err:
            log.warning("follower DM failed user=%s status=%s id=%s", user_id, err.status, err.error_id)


def status_buttons(ctx: Context, run_id: str) -> list[dict[str, Any]]:
    url = ctx.action_url
    out = [button(ctx.signer, "postupdate", "Post update", PostUpdate(run_id), url, "primary")]
    for seconds, label in SNOOZES:
        out.append(button(ctx.signer, f"snooze{label}", f"Snooze {label}", Snooze(run_id, seconds), url))
    return out


def retro_buttons(ctx: Context, run_id: str) -> list[dict[str, Any]]:
    url = ctx.action_url
    return [button(ctx.signer, "retrofill", "Fill in the retrospective", FillRetro(run_id), url, "primary"),
            button(ctx.signer, "retrocancel", "No retrospective", CancelRetro(run_id), url)]


def _service(ctx: Context) -> ReminderService:
    service = ReminderService(ctx)
    ctx.reminders = service  # what features call when they arm, move or answer a reminder
    return service


router.job("reminders", _service)
