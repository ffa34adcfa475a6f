"""Scheduled runs: a playbook's `[schedule]` starts a run at each occurrence of its cron expression.

Rows are the truth (storage.models.ScheduleOccurrence, storage/schedules.py), as for reminders; the
wake-up (bot.scheduler.Wakeup) only wakes this service at the next occurrence, at start-up, whenever
the playbooks change and at least every minute. A round looks at every current playbook with an enabled
schedule: the occurrence due is the latest one at or before now that is

- no older than GRACE_MS (one hour): occurrences missed while no bot ran are not all made up for; only
  the latest, and only if it is less than an hour old. An older latest one is recorded as skipped
  ("missed"), which the log and `python -m bot check` show;
- no older than the schedule: it starts counting when its cron, timezone and enabled were saved as they
  are now (a new playbook, or one edited to a new cron expression, does not start a run for an occurrence
  that passed before it was saved; an edit of anything else moves nothing:
  storage.schedules.schedule_since). Disabling or archiving takes effect at the next round.

The occurrence row and the run's start row are written in one transaction (storage.schedules
.OccurrenceStart through handlers.runs.StartService.begin): of two processes, or of a process before and
after a restart, only the one whose INSERT wins starts the run, and a crash cannot leave one without the
other. The start itself is then carried out as any other (handlers/runs.py), with the schedule's owner as
owner and creator (told in a DM), its members added, and the timeline saying "by the schedule (...)".

Skipped, with a reason recorded on the row and logged once by the process that recorded it: the owner no
longer exists, is deactivated, is a bot or is not in the playbook's team, the bot is not in the playbook's
team, the playbook was archived meanwhile, an existing channel that cannot be used, a start refused before
anything is made. A failure that may pass (Mattermost not answering) records nothing: the next round tries
again, within the grace.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from bot.context import Context
from bot.domain import schedules as cron
from bot.domain.durations import format_duration
from bot.models import MattermostError
from bot.playbooks import Playbook
from bot.router import Router, UserError
from bot.scheduler import Wakeup
from handlers.runs import (
    RunPlan,
    execute_run,
    existing_channel_unattended,
    prepare_run,
    unfit_person,
)
from storage import schedules as rows
from storage.db import StorageError

log = logging.getLogger(__name__)

router = Router("schedules")

JOB = "schedules"
GRACE_MS = 60 * 60_000  # a missed occurrence is started only while it is less than this old
POLL_S = 60.0


@dataclass(frozen=True)
class Due:
    playbook: Playbook
    trigger: CronTrigger
    at: int  # the occurrence, epoch ms


def trigger_of(playbook: Playbook) -> CronTrigger | None:
    """The playbook's schedule as a trigger, or None when it has none, it is off or it cannot be read (a
    version that validated once always reads; this only guards against a stale cache)."""
    schedule = playbook.schedule
    if schedule is None or not schedule.enabled:
        return None
    try:
        return cron.parse_cron(schedule.cron, cron.zone(schedule.timezone))
    except cron.ScheduleError:
        return None


def next_run_at(playbook: Playbook, now_ms: int) -> int | None:
    """When the playbook's schedule next starts a run (epoch ms), or None."""
    trigger = trigger_of(playbook)
    return cron.next_occurrence(trigger, now_ms) if trigger is not None else None


class ScheduleService:
    """Starts the runs of every scheduled playbook, each occurrence once (a `Job`)."""

    def __init__(self, ctx: Context, *, poll_s: float = POLL_S, grace_ms: int = GRACE_MS) -> None:
        self.ctx = ctx
        self.grace_ms = grace_ms
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=poll_s)
        self._lock = asyncio.Lock()
        self.started = 0  # runs started by this process
        self.skipped = 0  # occurrences this process recorded as skipped

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        if self.ctx.library is not None:
            self.ctx.library.listeners.append(lambda _library: self._changed())
        self.ctx.tasks.spawn(self.run_due(), name=JOB)  # an occurrence missed while down, within the grace
        log.info("schedules started")

    async def stop(self) -> None:
        self.wakeup.stop()
        async with self._lock:  # a round in flight finishes recording
            pass

    def _changed(self) -> None:
        """The playbooks changed (here or in another process): the next wake-up may be earlier."""
        if self.wakeup.running:
            self.wakeup.wake_at(self._next_due(self.ctx.clock.now_ms()), replace=False)

    async def _on_wake(self) -> None:
        self.ctx.tasks.spawn(self.run_due(), name=JOB)

    def _next_due(self, now_ms: int) -> int | None:
        times = [t for pb in self.ctx.playbooks.values() if (t := next_run_at(pb, now_ms)) is not None]
        return min(times) if times else None

    async def run_due(self) -> int:
        """Start the run of every occurrence due now that no process has recorded yet; how many this call
        started. Then set the next wake-up."""
        started = 0
        async with self._lock:
            try:
                now = self.ctx.clock.now_ms()
                due = await self._due(now)
                for item in due:
                    started += await self._occurrence(item, now)
            except StorageError:
                log.exception("scheduled runs: the database failed; trying again at the next round")
            finally:
                if self.wakeup.running:
                    self.wakeup.wake_at(self._next_due(self.ctx.clock.now_ms()))
        self.started += started
        return started

    async def _due(self, now: int) -> list[Due]:
        scheduled = [(pb, t) for pb in self.ctx.playbooks.values() if (t := trigger_of(pb)) is not None]
        if not scheduled:
            return []
        # A schedule counts from when it began to hold: the earliest of the unbroken run of versions with the
        # same cron, timezone and enabled (an edit of anything else, or a save between planning and the
        # claim, drops no occurrence).
        saved = await self.ctx.db.run(rows.schedule_since, [pb.version_id for pb, _ in scheduled if pb.version_id],
                                      readonly=True)
        candidates = []
        for pb, trigger in scheduled:
            at = cron.latest_occurrence(trigger, now, saved.get(pb.version_id, 0))
            if at is not None:
                candidates.append(Due(pb, trigger, at))
        done = await self.ctx.db.run(rows.recorded, [(d.playbook.id, d.at) for d in candidates], readonly=True)
        return sorted((d for d in candidates if (d.playbook.id, d.at) not in done), key=lambda d: (d.at, d.playbook.id))

    async def _occurrence(self, due: Due, now: int) -> int:
        pb, at = due.playbook, due.at
        schedule = pb.schedule
        assert schedule is not None
        tz_name = schedule.timezone
        if now - at > self.grace_ms:
            reason = self.ctx.render("schedules/reason.md.j2", kind="missed", at=at, tz=tz_name,
                                     late=_duration(now - at), grace=_duration(self.grace_ms))
            await self._skip(pb, at, reason)
            return 0
        try:
            plan_or_reason = await self._plan(pb, at)
        except MattermostError as err:
            log.warning("scheduled run of playbook %s at %s: Mattermost failed (%s %s); trying again at the "
                        "next round", pb.id, _when(at, tz_name), err.status, err.error_id)
            return 0
        if isinstance(plan_or_reason, str):
            await self._skip(pb, at, plan_or_reason)
            return 0
        plan = plan_or_reason
        claim = rows.OccurrenceStart(pb.id, at, pb.version_id, self.ctx.clock.now_ms(),
                                     archived_reason=self.ctx.render("schedules/reason.md.j2", kind="archived"),
                                     missing_reason=self.ctx.render("schedules/reason.md.j2", kind="missing"))
        outcome = await execute_run(self.ctx, plan, claim)
        if claim.outcome == "started":
            log.info("scheduled run started playbook=%s occurrence=%s run=%s name=%r", pb.id, _when(at, tz_name),
                     outcome.run_id, plan.name)
            return 1
        if claim.outcome == "archived":
            self.skipped += 1
            log.warning("scheduled run of playbook %s at %s skipped: %s", pb.id, _when(at, tz_name), claim.reason)
        elif claim.outcome == "changed" and self.ctx.library is not None:
            await self.ctx.library.check_now()  # the next round plans with the new version
            self.wakeup.wake_at(self.ctx.clock.now_ms(), replace=False)
        return 0

    async def _plan(self, pb: Playbook, at: int) -> RunPlan | str:
        """The run's plan, or the reason (text) the occurrence starts no run."""
        ctx = self.ctx
        schedule = pb.schedule
        assert schedule is not None
        team = next((t for t in ctx.teams.values() if t.name == pb.team), None)
        if team is None:
            return ctx.render("schedules/reason.md.j2", kind="no_team", team=pb.team or "")
        people = await ctx.users.by_username([schedule.owner, *schedule.members])
        owner = people.get(schedule.owner)
        why = "missing" if owner is None else await unfit_person(ctx, owner, team.id)
        if owner is None or why:  # checked now: a start would make a channel, then archive it again
            return ctx.render("schedules/reason.md.j2", kind="owner", owner=schedule.owner, why=why, team=team.name)
        member_ids = []
        for name in schedule.members:
            user = people.get(name)
            why = "not a user" if user is None else await unfit_person(ctx, user, team.id)
            if user is None or why:
                log.warning("scheduled run of playbook %s: member @%s cannot take part (%s); the run starts "
                            "without them", pb.id, name, why.replace("_", " "))
            else:
                member_ids.append(user.id)
        tz = cron.zone(schedule.timezone)
        try:
            name = cron.render_name(schedule.name, at, tz, pb.title)
        except cron.ScheduleError as exc:  # validated at save; a sandbox refusal at render time only
            log.warning("scheduled run of playbook %s: the name template failed (%s); using the default", pb.id, exc)
            name = cron.render_name(cron.DEFAULT_NAME, at, tz, pb.title)
        try:
            plan = prepare_run(ctx, pb, name, "", owner.id, team.id, "")
        except UserError as refused:
            return ctx.render("schedules/reason.md.j2", kind="refused", text=str(refused))
        plan.owner_id = owner.id
        plan.member_ids = member_ids
        plan.origin = cron.describe(schedule.cron, schedule.timezone)
        if pb.existing_channel:
            reason = await existing_channel_unattended(ctx, plan)
            if reason:
                return ctx.render("schedules/reason.md.j2", kind="refused", text=reason)
        return plan

    async def _skip(self, pb: Playbook, at: int, reason: str) -> None:
        if await self.ctx.db.run(rows.record_skipped, pb.id, at, reason, self.ctx.clock.now_ms()):
            self.skipped += 1
            tz_name = pb.schedule.timezone if pb.schedule else "UTC"
            log.warning("scheduled run of playbook %s at %s skipped: %s", pb.id, _when(at, tz_name), reason)


def _duration(ms: int) -> str:
    return format_duration(timedelta(seconds=max(60, ms // 60_000 * 60)))


def _when(at: int, tz_name: str) -> str:
    return datetime.fromtimestamp(at / 1000, tz=cron.zone(tz_name)).isoformat()


router.job(JOB, ScheduleService)
