"""Items that fall due: at an item's due time its checklist post shows it overdue and its assignee gets a
direct message (unless they turned `/playbook settings due` off), without waiting for anyone's click;
fifteen minutes before (storage.items.SOON_MS), the assignee gets a heads-up.

As with reminders, the rows are the truth: `checklist_items.due_noticed_at` is claimed with a
conditional UPDATE when the notice is given (storage.items.claim_items_due), so a wake-up that runs
twice, or two bot processes, notice each item once; moving an item's due time clears the claim, so the
new time gets its own notice. bot.scheduler.Wakeup wakes the service at the earliest due time (and polls
every `poll_s` besides); after a restart, items that fell due meanwhile are noticed at once.
"""
from __future__ import annotations

import asyncio
import logging

from bot.context import Context
from bot.models import MattermostError
from bot.router import Router
from bot.scheduler import Wakeup
from handlers.announce import permalink
from handlers.views import refresh_checklist_later
from storage import items as rows
from storage import settings as personal
from storage.models import ChecklistItem, Run

log = logging.getLogger(__name__)

router = Router("due")


class DueService:
    def __init__(self, ctx: Context, *, batch: int = 200, poll_s: float = 60.0) -> None:
        self.ctx = ctx
        self.batch = batch
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=poll_s)
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        self.wakeup.wake_at(await self.ctx.db.run(rows.next_item_due, readonly=True))

    async def stop(self) -> None:
        self.wakeup.stop()
        async with self._lock:
            pass

    def changed(self, due_ms: int | None) -> None:
        """An item's due time was set to `due_ms`: wake then, if that is earlier than planned."""
        if due_ms is not None:
            self.wakeup.wake_at(due_ms, replace=False)

    async def _on_wake(self) -> None:
        self.ctx.tasks.spawn(self.run_due(), name="items-due")

    async def run_due(self) -> int:
        """Give every notice due now; how many items this call noticed. Then set the next wake-up."""
        noticed = 0
        async with self._lock:
            try:
                while True:
                    now = self.ctx.clock.now_ms()
                    soon = await self.ctx.db.run(rows.claim_items_due_soon, now, self.batch)
                    await asyncio.gather(*(self._tell(run, item, now, soon=True) for run, item in soon))
                    claimed = await self.ctx.db.run(rows.claim_items_due, now, self.batch)
                    for checklist_id in dict.fromkeys(item.checklist_id for _, item in claimed):
                        # Re-rendered from the rows, as every edit is: the mark appears now.
                        refresh_checklist_later(self.ctx, _run_of(claimed, checklist_id), checklist_id)
                    await asyncio.gather(*(self._tell(run, item, now) for run, item in claimed))
                    noticed += len(claimed)
                    if len(claimed) < self.batch and len(soon) < self.batch:
                        break
            finally:
                if self.wakeup.running:
                    try:
                        self.wakeup.wake_at(await self.ctx.db.run(rows.next_item_due, readonly=True))
                    except Exception:
                        log.exception("reading the next due item failed; polling instead")
                        self.wakeup.wake_at(None)
        return noticed

    async def _tell(self, run: Run, item: ChecklistItem, now: int, soon: bool = False) -> None:
        uid = item.assignee_id
        if not uid or uid == self.ctx.bot_user.id:
            return
        try:
            if not await self.ctx.db.run(personal.wants, uid, "due", readonly=True):
                return
            post_id = await self.ctx.db.run(rows.checklist_post_id, item.checklist_id, readonly=True)
            number = await self.ctx.db.run(rows.item_number, item.id, readonly=True)
            person = await self.ctx.users.get(uid)
            await self.ctx.dms.send(uid, self.ctx.render(
                "notices/item_due.md.j2", number=number, title=item.title, run=run.name, due_at=item.due_at,
                tz=person.timezone if person else "", soon=soon,
                minutes=max(1, round(((item.due_at or now) - now) / 60_000)),
                late=item.due_at is not None and now - item.due_at > 60_000,
                link=permalink(self.ctx, run.team_id, post_id) if post_id else ""))
        except MattermostError as err:
            # The claim stays: the post shows the item overdue either way, and a DM twice is worse.
            log.warning("due notice DM failed item=%s status=%s id=%s", item.id, err.status, err.error_id)


def _run_of(claimed: list[tuple[Run, ChecklistItem]], checklist_id: str) -> str:
    return next(run.id for run, item in claimed if item.checklist_id == checklist_id)


def due_changed(ctx: Context, due_ms: int | None) -> None:
    """Tell the service an item's due time is now `due_ms` (a command, a run start)."""
    service = ctx.jobs.get("due")
    if isinstance(service, DueService):
        service.changed(due_ms)


router.job("due", DueService)
