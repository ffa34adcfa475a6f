"""Starting a run: the channel, its members, their sidebar category, the overview and checklist posts.

The "Run a playbook" dialog is here too; `/playbook run` (commands/run.py) parses what was typed.

`prepare_run` checks everything that can be checked without Mattermost, so the slash command (or the
dialog) answers within milliseconds; `execute_run` does the slow part in a tracked follow-up task.

A start is a recorded sequence (storage.models.RunStart, storage/starts.py): the plan is written before
anything is asked of Mattermost, and each step's result (the run's rows, the channel's name before it is
created and its id after, the members added, the owner made admin, the sidebar filing, each post, the
broadcasts, the starter told) is recorded as it completes, by the process holding the start's lease.
Resuming repeats nothing: a step whose result is recorded is skipped; a channel created but not recorded
is adopted by its recorded name; a post made but not recorded is found by its props marker among the
channel's newest posts; adding a member twice is harmless. A step that fails with 429, 5xx or no answer
is tried again after a backoff (`StartService`, on the injected clock), in any process: a crash or a
restart leaves a row that the next process to look takes up (at start-up, or once the lease runs out).

The end is always one of: the run complete (in progress, visible, its posts made) and the starter told;
or nothing left (the channel archived again, the run "failed", seen by nobody) and the starter told why.

A playbook with `channel_mode = "existing"` runs in a channel that is already there (its `channel`, or the
one the run was started from): `existing_channel` finds it and checks that the starter is in it before
the start is recorded (a refusal records and makes nothing), and the plan carries its id, so there is no
channel step, no admin step and no sidebar filing; the bot joins it with the starter and the owner. Its
rollback never archives that channel: it deletes the posts the start made there (recorded, or found by
their marker), and leaves the people it added.
A step the run cannot do without (its rows, the channel, the starter and the owner in it, the overview
and checklist posts, storing it as started) rolls the start back when it fails for good; any other
(other members, the owner's admin role, sidebar categories, the welcome, broadcasts) is reported in the
run's channel and the start goes on. Until it is complete, the run is "starting": in no list, answer or
count, and its buttons say it is still starting.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bot.actions import StartRunDialog
from bot.context import Context
from bot.domain import naming
from bot.domain.conditions import holds
from bot.domain.permissions import Viewer, may_run_playbook, participants_may_finish
from bot.models import MattermostError, MMChannel, MMUser
from bot.notify import follow_up, notify
from bot.playbooks import Playbook
from bot.posts import STATE_PROP
from bot.router import DialogErrors, DialogSubmission, FieldError, NoReply, Reply, Router, UserError
from handlers.fields import DIALOG_TEXT_MAX, DIALOG_TEXTAREA_MAX, Fields
from handlers.leased import LeasedRows
from handlers.playbook_access import viewer_for
from handlers.properties import dialog_elements, dialog_values, start_values
from handlers.sidebar import file_in_category
from handlers.views import (
    PART_PROP,
    RUN_PROP,
    overview_names,
    render_checklist,
    render_overview,
    schedule_overview_refresh,
)
from storage import runs, starts
from storage.db import StorageError
from storage.ids import new_id
from storage.models import Checklist, ChecklistItem, Reminder, Run, RunStart
from storage.reminders import STATUS
from storage.runs import RunView

log = logging.getLogger(__name__)

router = Router("run-start")

MAX_RUN_NAME = 1024  # runes, as the plugin's dialog (our dialog's text element holds DIALOG_TEXT_MAX)
# The summary is the "Run a playbook" textarea: what Mattermost lets a textarea hold. It must fit, with
# everything else, in the overview post (run/overview.md.j2) and the broadcast (run/broadcast_started):
# name <= 1024 and playbook title <= 1024 (bot/playbooks TITLE_MAX) at most double when Markdown is
# escaped, the summary at most doubles (broadcast: escaped) or grows by 1/4 (overview: @all defused),
# plus under 400 characters of our wording: 2*1024 + 2*1024 + 2*3000 + 400 = 10496 < 16383 runes
# (PostMessageMaxRunesV2). tests/handlers/test_dialog_fields.py renders the worst case.
MAX_SUMMARY = DIALOG_TEXTAREA_MAX
CHANNEL_EXISTS = "store.sql_channel.save_channel.exists.app_error"
NOT_IN_TEAM = "app.team.get_member.missing.app_error"
# TeamSettings.MaxChannelsPerTeam reached; archived channels count (app/channel.go CreateChannelWithUser).
CHANNEL_LIMIT = "api.channel.create_channel.max_channel_limit.app_error"


@dataclass
class RunPlan:
    playbook: Playbook
    name: str
    summary: str
    creator_id: str
    team_id: str
    origin_channel_id: str
    response_url: str = ""
    # channel_mode = "existing": the channel the run goes into, found and checked before the start is
    # recorded (existing_channel); None for a run that gets a channel of its own.
    channel: MMChannel | None = None
    properties: dict[str, Any] = field(default_factory=dict)  # the run's property values (handlers.properties)
    # Who else decides: a start that names its owner (the API, an alert route, a schedule) overrides the
    # playbook's `owner`; its members join the playbook's. Mattermost user ids, checked before the plan.
    owner_id: str = ""
    member_ids: list[str] = field(default_factory=list)
    # What started the run when it was not a person in chat, in words for the timeline: "alert from
    # Alertmanager: HighLatency", "schedule 0 9 * * MON", "the API". "" = a person with /playbook run.
    origin: str = ""


@dataclass
class RunOutcome:
    run_id: str = ""
    channel: MMChannel | None = None
    problems: list[str] = field(default_factory=list)
    error: str = ""


def in_team(ctx: Context, team_id: str) -> list[Playbook]:
    """Playbooks usable in a team: those without `team`, and those naming this team (whoever asks)."""
    team = ctx.teams.get(team_id)
    out = [p for p in ctx.playbooks.values() if not p.team or (team is not None and p.team == team.name)]
    return sorted(out, key=lambda p: p.title.lower())


def team_playbooks(ctx: Context, team_id: str, viewer: Viewer) -> list[Playbook]:
    """The playbooks of a team that `viewer` may run (bot.domain.permissions): every list a person chooses
    from, so a private playbook never shows to anyone outside it."""
    return [p for p in in_team(ctx, team_id) if may_run_playbook(viewer, p)]


def prepare_run(ctx: Context, playbook: Playbook, name: str, summary: str, creator_id: str, team_id: str,
                origin_channel_id: str, response_url: str = "", properties: dict[str, Any] | None = None
                ) -> RunPlan:
    """Check what can be checked before Mattermost is called; a refusal is a FieldError naming the
    dialog's field (`playbook`, `name`, `summary`), shown as text to a slash command. `properties`: the
    values given (already parsed, handlers.properties); the playbook's defaults fill the others."""
    if playbook not in in_team(ctx, team_id):
        team = ctx.teams.get(team_id)
        raise FieldError("playbook", ctx.render("commands/playbook_other_team.md.j2", playbook=playbook.title,
                                                team=playbook.team, here=team.name if team else team_id))
    name = name.strip()
    if len(name) > MAX_RUN_NAME:
        raise FieldError("name", ctx.render("commands/name_too_long.md.j2", length=len(name), limit=MAX_RUN_NAME))
    summary = summary.strip() or playbook.summary  # the playbook's run summary template
    if len(summary) > MAX_SUMMARY:
        raise FieldError("summary", ctx.render("run/summary_too_long.md.j2", length=len(summary),
                                               limit=MAX_SUMMARY))
    # Control and format characters go, as Mattermost strips them from display names.
    name = naming.clean_display_name(name, limit=MAX_RUN_NAME) or playbook.title
    values = start_values(ctx, playbook, properties or {})
    return RunPlan(playbook, name, summary, creator_id, team_id, origin_channel_id, response_url,
                   properties=values)


# --- the start as a recorded sequence -------------------------------------------------------------

# Each holder of a start's lease renews it this often; a lease not renewed for LEASE_MS is free.
LEASE_MS = 8_000
RENEW_S = 2.0
# A step that fails with 429, 5xx, no answer or a database error is tried again after a backoff, this
# many times in all; a 4xx is final at once. Then a step the run cannot do without rolls the start back;
# any other is reported in the run's channel and the start goes on.
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 16.0
POLL_S = 15.0  # every process looks for starts left by others at least this often
# Props marking the posts a start makes, so a post made but not recorded (a crash, a lost answer) is
# found among the channel's newest posts instead of being posted twice.
RECENT_POSTS = 100
ALREADY_ARCHIVED = "api.channel.delete_channel.deleted.app_error"
JOB = "run-starts"

# What each step does, in the words of a failure reason ("I could not <step>").
STEPS = {
    "prepare": "look up the playbook's people", "channel": "create the channel",
    "owner": "add you and the owner to the channel", "members": "add the playbook's members",
    "admin": "make the owner a channel admin", "categories": "file the channel in sidebar categories",
    "posts": "post the overview and the checklists", "welcome": "post the welcome message",
    "broadcasts": "announce the run", "problems": "post what went wrong", "complete": "save the run",
    "told": "tell you the run has started", "rollback": "archive the channel again",
}


def crash_points(pb: Playbook) -> list[str]:
    """Test-only: the points of a start of `pb` where `[testing] crash_at` can stop the bot hard, in order.
    "<step>:sent": Mattermost did it, nothing recorded yet; "<step>": recorded."""
    created = not pb.existing_channel  # an existing channel is not created, its owner not promoted, not filed
    points = ["begin", "prepare"] + (["channel:sent", "channel"] if created else []) + ["owner:sent", "owner"]
    if pb.members:
        points += ["members:sent", "members"]
    points += ["admin:sent", "admin"] if created else ["admin"]
    if pb.category and created:
        points += ["categories:sent", "categories"]
    points += ["overview:sent", "overview"]
    for n in range(1, len(pb.checklists) + 1):
        points += [f"checklist{n}:sent", f"checklist{n}"]
    if pb.welcome:
        points += ["welcome:sent", "welcome"]
    if pb.broadcast_channels:
        points += ["broadcast:sent", "broadcast"]
    return points + ["complete", "told:sent", "told"]


def _crash_point(ctx: Context, name: str, run_name: str) -> None:
    """Test-only: `[testing] crash_at = "<point>"` (any start) or `"<point>@<run name>"` (that run's start
    only) kills this process with SIGKILL there, as a crash or an OOM kill would."""
    wanted = ctx.settings.testing.crash_at
    if not wanted:
        return
    point, _, only = wanted.partition("@")
    if point == name and (not only or only == run_name):
        log.warning("test-only [testing] crash_at=%s reached: stopping hard (SIGKILL)", wanted)
        os.kill(os.getpid(), signal.SIGKILL)


def retryable(err: BaseException) -> bool:
    """Whether trying again later may succeed: anything but Mattermost's final 4xx answers."""
    if isinstance(err, MattermostError):
        return err.status in (0, 408, 429) or err.status >= 500
    return True


def backoff_s(attempt: int) -> float:
    """Seconds before try number `attempt + 1`: 1, 2, 4, 8, 16 (about half a minute in all)."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))


class LeaseLost(Exception):
    """Another process took the start over (this one was too slow): stop without touching it."""


class StepFailed(Exception):
    """A step the run cannot do without failed for good: roll the start back, telling the starter why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retry(Exception):
    def __init__(self, step: str, err: BaseException) -> None:
        super().__init__(f"{step}: {err}")
        self.step = step
        self.err = err


class StartService(LeasedRows[RunStart]):
    """Carries every run start to its end: the one started here, and those left unfinished by a crash,
    a restart or a failing Mattermost, in whichever process gets to them first (handlers/leased.py:
    `run_due()` claims each unfinished start that is due and free and carries it forward)."""

    job = JOB
    what = "unfinished run starts"
    live = staticmethod(starts.unfinished)
    claim = staticmethod(starts.claim)

    def __init__(self, ctx: Context, *, lease_ms: int = LEASE_MS, renew_s: float = RENEW_S,
                 poll_s: float = POLL_S) -> None:
        super().__init__(ctx, lease_ms=lease_ms, poll_s=poll_s)
        self.renew_s = renew_s

    @staticmethod
    def key(row: RunStart) -> str:
        return row.run_id

    async def start(self) -> None:
        self.wakeup.start()
        # Whatever a previous process left unfinished is resumed now, not at the first poll.
        self.ctx.tasks.spawn(self.run_due(), name=self.job)

    async def stop(self) -> None:
        self.wakeup.stop()

    async def begin(self, plan: RunPlan, insert: Callable[..., bool] | None = None) -> RunStart | None:
        """Record the plan before anything is asked of Mattermost, held by this process. `insert`: a
        storage function `(session, start) -> bool` writing the start row together with something that
        must go in the same transaction (a schedule's occurrence, storage.schedules.OccurrenceStart; an
        alert delivery, storage.alerts.start_recorder); when it returns False nothing is started and
        begin returns None (what it raises propagates, and nothing is recorded then)."""
        now = self.ctx.clock.now_ms()
        row = RunStart(run_id=new_id(), created_at=now, playbook_id=plan.playbook.id,
                       playbook_version_id=plan.playbook.version_id or None, name=plan.name,
                       summary=plan.summary, creator_id=plan.creator_id, team_id=plan.team_id,
                       origin_channel_id=plan.origin_channel_id, response_url=plan.response_url,
                       properties=plan.properties, owner_id=plan.owner_id, member_ids=list(plan.member_ids),
                       origin=plan.origin, lease_owner=self.holder, lease_until=now + self.lease_ms)
        if plan.channel is not None:  # no channel step: the run goes into this one, never archived
            row.existing_channel = True
            row.channel_id = plan.channel.id
            row.channel_name = plan.channel.name
            row.display_name = plan.channel.display_name
        if insert is None:
            await self.ctx.db.run(starts.insert_start, row)
        elif not await self.ctx.db.run(insert, row):
            return None
        self._active.add(row.run_id)
        _crash_point(self.ctx, "begin", plan.name)
        return row

    async def carry(self, row: RunStart, fresh: bool = False) -> RunOutcome:
        """Carry one start (whose lease this process holds) as far as it goes now: to its end, or to the
        backoff of a failing step. `fresh`: nothing of it was tried before, so nothing needs finding."""
        self._active.add(row.run_id)
        renewer = asyncio.get_running_loop().create_task(self._renew(row.run_id))
        try:
            return await _Attempt(self.ctx, self, row, fresh).advance()
        except Exception:  # noqa: BLE001 - the lease runs out and the start is taken up again
            log.exception("run start failed unexpectedly run=%s; it is taken up again later", row.run_id)
            self.wakeup.wake_at(self.ctx.clock.now_ms() + self.lease_ms + 1000, replace=False)
            return RunOutcome(run_id=row.run_id)
        finally:
            renewer.cancel()
            self._active.discard(row.run_id)

    async def _renew(self, run_id: str) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                if not await self.ctx.db.run(starts.renew, run_id, self.holder, self.ctx.clock.now_ms(),
                                             self.lease_ms):
                    return
            except StorageError:
                log.warning("renewing the lease of run start %s failed", run_id)

    async def retry_later(self, row: RunStart, retry: _Retry) -> None:
        attempts = (row.attempts if row.step == retry.step else 0) + 1
        delay = backoff_s(attempts)
        due = self.ctx.clock.now_ms() + int(delay * 1000)
        log.info("run start step failed, trying again later run=%s step=%s attempt=%d delay_s=%.1f error=%s",
                 row.run_id, retry.step, attempts, delay, retry.err)
        if await self.ctx.db.run(starts.release, row.run_id, self.holder, retry.step, attempts, due):
            self.wakeup.wake_at(due, replace=False)


def _service(ctx: Context) -> StartService:
    job = ctx.jobs.get(JOB)
    return job if isinstance(job, StartService) else StartService(ctx)


router.job(JOB, StartService)


async def execute_run(ctx: Context, plan: RunPlan, insert: Callable[..., bool] | None = None) -> RunOutcome:
    """Start the run `plan` describes: record it, then carry it out step by step, as far as it goes now
    (to the end, or to a failing step's backoff: the start service takes it up again then). `insert`: see
    StartService.begin; when it declines, nothing starts and the outcome has no run_id."""
    if plan.playbook.existing_channel and plan.channel is None:
        try:
            plan.channel = await existing_channel(ctx, plan)
        except StepFailed as refused:  # nothing recorded, nothing made: the starter hears why
            await notify_starter(ctx, plan, ctx.render("run/start_failed.md.j2", name=plan.name,
                                                       reason=refused.reason))
            return RunOutcome(error=refused.reason)
    service = _service(ctx)
    row = await service.begin(plan, insert)
    if row is None:
        return RunOutcome()
    return await service.carry(row, fresh=True)


async def existing_channel(ctx: Context, plan: RunPlan) -> MMChannel:
    """The channel a `channel_mode = "existing"` run goes into: the playbook's `channel` in the run's team,
    or the channel it was started from. Refused (StepFailed, before anything is recorded) when the bot
    cannot see it, it is not a channel of the team, it is archived, or the starter is not in it: a run is
    started only where its starter may read and post."""
    pb = plan.playbook
    try:
        if pb.channel:
            channel = await ctx.gateway.get_channel_by_name(plan.team_id, pb.channel)
        else:
            channel = await ctx.gateway.get_channel(plan.origin_channel_id)
    except MattermostError as err:
        if err.status in (403, 404):
            raise StepFailed(ctx.render("run/reason_channel_unseen.md.j2", name=pb.channel)) from err
        raise StepFailed(ctx.render("run/reason_mattermost.md.j2", step="look up the run's channel", err=err)) from err
    if channel.type not in ("O", "P") or channel.team_id != plan.team_id or channel.delete_at:
        raise StepFailed(ctx.render("run/reason_channel_kind.md.j2", name=channel.name,
                                    archived=bool(channel.delete_at) and channel.type in ("O", "P"),
                                    other_team=channel.type in ("O", "P") and channel.team_id != plan.team_id))
    try:
        member = await ctx.gateway.is_channel_member(channel.id, plan.creator_id)
    except MattermostError as err:
        if err.status in (403, 404):
            raise StepFailed(ctx.render("run/reason_channel_unseen.md.j2", name=pb.channel)) from err
        raise StepFailed(ctx.render("run/reason_mattermost.md.j2", step="check that you are in the run's channel",
                                    err=err)) from err
    if not member:
        raise StepFailed(ctx.render("run/reason_channel_not_member.md.j2", name=channel.name))
    return channel


async def existing_channel_unattended(ctx: Context, plan: RunPlan) -> str:
    """For a start with nobody in chat to answer (an alert, a schedule): set `plan.channel` to the run's
    existing channel and return "", or return why it is refused. A Mattermost failure worth another try is
    raised as itself, so the caller tries again later instead of recording a refusal."""
    try:
        plan.channel = await existing_channel(ctx, plan)
    except StepFailed as refused:
        cause = refused.__cause__
        if isinstance(cause, MattermostError) and retryable(cause):
            raise cause from None
        return refused.reason
    return ""


async def unfit_person(ctx: Context, user: MMUser, team_id: str) -> str:
    """Why `user` cannot take part in a run in the team `team_id` started without a person in chat (a
    schedule, an alert): "deactivated", "bot", "not_in_team"; "" when they can. Checked before anything is
    made, so a start does not create a channel only to archive it again on every occurrence. When the bot
    may not read the user's teams (403: api4/team.go getTeamsForUser needs the user themselves or a
    system admin), the team is left for the start to find out. MattermostError when Mattermost does not
    answer (worth trying again)."""
    if user.delete_at:
        return "deactivated"
    if user.is_bot:
        return "bot"
    try:
        teams = await ctx.gateway.user_team_ids(user.id)
    except MattermostError as err:
        if err.status in (401, 403):
            return ""
        if err.status == 404:
            return "deactivated"
        raise
    return "" if team_id in teams else "not_in_team"


class _Attempt:
    """One go at a start by the holder of its lease: each step is skipped when its result is recorded,
    done and recorded otherwise. A post or channel that may have been made by an earlier go without
    being recorded is looked for first (unless `fresh`)."""

    def __init__(self, ctx: Context, service: StartService, row: RunStart, fresh: bool) -> None:
        self.ctx = ctx
        self.service = service
        self.row = row
        self.fresh = fresh
        self.outcome = RunOutcome(run_id=row.run_id)
        self._marked: dict[str, dict[str, str]] = {}  # channel id -> part -> post id, found this go
        self._run: Run | None = None
        self._playbook: Playbook | None = None  # the version the start was planned with, read by _forward

    # -- plumbing --------------------------------------------------------------------------------------

    @property
    def playbook(self) -> Playbook:
        pb = self._playbook
        if pb is None:
            raise StepFailed(self.ctx.render("run/reason_playbook_gone.md.j2", playbook=self.row.playbook_id))
        return pb

    async def run(self) -> Run:
        if self._run is None:
            self._run = await self.ctx.db.run(runs.get_run, self.row.run_id, readonly=True)
            assert self._run is not None  # the first step wrote it
        return self._run

    async def _record(self, point: str, values: dict[str, Any], **rows: Any) -> None:
        ok = await self.ctx.db.run(functools.partial(starts.record, **rows), self.row.run_id, self.service.holder,
                                   self.ctx.clock.now_ms(), self.service.lease_ms, values)
        if not ok:
            raise LeaseLost(self.row.run_id)
        for key, value in values.items():
            setattr(self.row, key, value)
        _crash_point(self.ctx, point, self.row.name)

    def _last_try(self, step: str) -> bool:
        return self.row.step == step and self.row.attempts + 1 >= MAX_ATTEMPTS

    def _reason(self, step: str, err: BaseException, gave_up: bool) -> str:
        if isinstance(err, MattermostError) and err.error_id == CHANNEL_LIMIT:
            return self.ctx.render("run/reason_channel_limit.md.j2", err=err)
        if isinstance(err, MattermostError) and not gave_up:
            return self.ctx.render("run/reason_mattermost.md.j2", step=STEPS[step], err=err)
        if isinstance(err, MattermostError):
            seconds = int(sum(backoff_s(n) for n in range(1, MAX_ATTEMPTS)))
            return self.ctx.render("run/reason_gave_up.md.j2", step=STEPS[step], err=err, tries=MAX_ATTEMPTS,
                                   seconds=seconds)
        if isinstance(err, StorageError):
            return self.ctx.render("run/reason_storage.md.j2")
        return self.ctx.render("run/reason_internal.md.j2", step=STEPS[step])

    async def _step(self, step: str, work: Callable[[bool], Awaitable[None]], *, needed: bool) -> None:
        """Do a step; a failure is retried later (`_Retry`), or is final: a `needed` step then rolls the
        start back (StepFailed); any other is reported in the channel (`_give_up`) and the start goes on."""
        last = self._last_try(step)
        try:
            await work(last)
        except (LeaseLost, StepFailed, _Retry):
            raise
        except Exception as err:  # noqa: BLE001 - every failure is retried or reported, never lost
            if not isinstance(err, MattermostError):
                log.warning("run start step %s failed run=%s", step, self.row.run_id, exc_info=True)
            final = not retryable(err)
            if (not final and not last) or step == "told":
                # Once the run is complete nothing rolls it back: telling the starter is retried until done.
                raise _Retry(step, err) from err
            if needed:
                raise StepFailed(self._reason(step, err, gave_up=not final)) from err
            await self._give_up(step, self._reason(step, err, gave_up=not final))

    async def _give_up(self, step: str, reason: str) -> None:
        done: dict[str, dict[str, Any]] = {
            "members": {"members_done": True}, "admin": {"admin_done": True}, "categories": {"filed": True},
            "welcome": {"posts": {**self.row.posts, "welcome": ""}}, "broadcasts": {"broadcasts_done": True},
            "problems": {"posts": {**self.row.posts, "problems": ""}},
        }
        problems = self.row.problems if step == "problems" else [*self.row.problems, reason]
        await self._record(step, {**done[step], "problems": problems})

    def _mark(self, props: dict[str, Any] | None, part: str) -> dict[str, Any]:
        return {**(props or {}), RUN_PROP: self.row.run_id, PART_PROP: part}

    async def _find_marked(self, channel_id: str, part: str) -> str | None:
        """The post of `part` this start made in the channel without recording it, if any."""
        if self.fresh:
            return None
        if channel_id not in self._marked:
            try:
                posts = await self.ctx.gateway.get_channel_posts(channel_id, per_page=RECENT_POSTS)
            except MattermostError as err:
                if retryable(err):
                    raise
                log.warning("cannot read channel=%s to find an unrecorded post: %s", channel_id, err)
                posts = []
            self._marked[channel_id] = {str(p.props.get(PART_PROP)): p.id for p in posts  # newest first:
                                        if p.user_id == self.ctx.bot_user.id  # the oldest of twins wins
                                        and p.props.get(RUN_PROP) == self.row.run_id}
        return self._marked[channel_id].get(part)

    async def _made(self, channel_id: str, part: str, point: str, message: str,
                    props: dict[str, Any] | None) -> str:
        """The post of `part`, made once: found if an earlier go made it, posted (marked) otherwise."""
        post_id = await self._find_marked(channel_id, part)
        if post_id is None:
            post = await self.ctx.gateway.create_post(channel_id, message, props=self._mark(props, part))
            post_id = post.id
            _crash_point(self.ctx, f"{point}:sent", self.row.name)
        return post_id

    async def _tell(self, text: str) -> None:
        r = self.row
        await notify(self.ctx, r.creator_id, r.origin_channel_id, text, response_url=r.response_url)

    async def _username(self, user_id: str) -> str:
        user = await self.ctx.users.get(user_id)
        return user.username if user else user_id

    # -- the sequence ----------------------------------------------------------------------------------

    async def advance(self) -> RunOutcome:
        try:
            if self.row.state == "starting":
                try:
                    await self._forward()
                except StepFailed as failed:
                    log.warning("run start failed for good, rolling back run=%s reason=%s", self.row.run_id,
                                failed.reason)
                    await self._record("failing", {"state": "rolling_back", "reason": failed.reason, "step": "",
                                                   "attempts": 0})
            if self.row.state == "rolling_back":
                await self._rollback()
        except _Retry as retry:
            await self.service.retry_later(self.row, retry)
        except LeaseLost:
            log.warning("run start taken over by another process run=%s", self.row.run_id)
        self.outcome.problems = list(self.row.problems)
        self.outcome.error = self.row.reason
        return self.outcome

    async def _forward(self) -> None:
        r = self.row
        # Every step reads the playbook version the start recorded, even if the playbook changed since.
        self._playbook = await self.ctx.run_playbook(r)
        if not r.prepared:
            await self._step("prepare", self._prepare, needed=True)
        if not r.channel_id:
            await self._step("channel", self._channel, needed=True)
        if not r.owner_added:
            await self._step("owner", self._owner, needed=True)
        if not r.members_done:
            await self._step("members", self._members, needed=False)
        if not r.admin_done:
            await self._step("admin", self._admin, needed=False)
        # Sidebar filing and the run's posts touch different parts of the record: side by side.
        side = [self._step("posts", self._posts, needed=True)]
        if not r.filed:
            side.append(self._step("categories", self._categories, needed=False))
        failures = [f for f in await asyncio.gather(*side, return_exceptions=True) if f is not None]
        for kind in (LeaseLost, StepFailed, _Retry, BaseException):  # the gravest first
            found = next((f for f in failures if isinstance(f, kind)), None)
            if found is not None:
                raise found
        if "welcome" not in r.posts:
            await self._step("welcome", self._welcome, needed=False)
        if not r.broadcasts_done:
            await self._step("broadcasts", self._broadcasts, needed=False)
        if r.problems and "problems" not in r.posts:
            await self._step("problems", self._problems, needed=False)
        if not r.completed:
            await self._step("complete", self._complete, needed=True)
        await self._step("told", self._told, needed=True)

    async def _prepare(self, last: bool) -> None:
        ctx, r, pb = self.ctx, self.row, self.playbook
        wanted = [pb.owner] if pb.owner else []
        wanted += list(pb.members)
        wanted += [i.assignee.username for c in pb.checklists for i in c.items
                   if i.assignee is not None and i.assignee.kind == "user"]
        by_name = await ctx.users.by_username(wanted)
        creator = await ctx.users.get(r.creator_id)
        problems: list[str] = []
        if r.owner_id:  # named by the start itself (checked then): it wins over the playbook's owner
            owner = await ctx.users.get(r.owner_id) or creator
        else:
            owner = by_name.get(pb.owner.lower()) if pb.owner else creator
            if owner is None:
                problems.append(ctx.render("run/problem_no_user.md.j2", username=pb.owner, role="owner"))
                owner = creator
        owner_id = owner.id if owner else r.creator_id
        members: list[str] = []
        for username in pb.members:
            user = by_name.get(username.lower())
            if user is None:
                problems.append(ctx.render("run/problem_no_user.md.j2", username=username, role="member"))
            elif user.id not in (r.creator_id, owner_id, *members):
                members.append(user.id)
        for uid in r.member_ids or []:
            if uid not in (r.creator_id, owner_id, *members):
                members.append(uid)
        private = pb.private_channel
        if r.existing_channel:  # the run is as public as its channel (who sees it follows who reads it)
            private = (await ctx.gateway.get_channel(r.channel_id)).type != "O"
        seq = await ctx.db.run(runs.next_seq, r.team_id, pb.id)
        display = naming.render_display_name(pb.channel_name, seq=seq, name=r.name,
                                             when=datetime.fromtimestamp(r.created_at / 1000, tz=timezone.utc),
                                             owner=owner.username if owner else "", playbook=pb.title)
        run = Run(id=r.run_id, seq=seq, name=r.name, summary=r.summary, playbook_id=pb.id, playbook_title=pb.title,
                  playbook_version_id=r.playbook_version_id,
                  team_id=r.team_id, channel_id=r.channel_id, private=private, owner_id=owner_id,
                  creator_id=r.creator_id, status="starting", created_at=r.created_at,
                  status_updates_enabled=bool(pb.status_updates.enabled),
                  reminder_interval_s=int(pb.status_updates.interval.total_seconds())
                  if pb.status_updates.enabled else 0,
                  retrospective_enabled=bool(pb.retrospective.enabled),
                  retrospective_reminder_s=int(pb.retrospective.reminder_interval.total_seconds())
                  if pb.retrospective.reminder_interval else 0,
                  # [access] finish, from the version the run follows (bot.domain.permissions).
                  participants_may_finish=participants_may_finish(pb.access),
                  archive_on_finish=pb.archive_channel_on_finish and not r.existing_channel,
                  existing_channel=r.existing_channel,
                  metric_defs=[m.as_dict() for m in pb.metrics],
                  property_defs=[p.as_dict() for p in pb.properties], properties=dict(r.properties or {}))
        checklists = _build_checklists(ctx, pb, run.id, r.created_at, owner_id, r.creator_id, by_name, problems,
                                       run.properties)
        names = {"display_name": display, "channel_name": next(naming.name_candidates(naming.channel_slug(display)))}
        await self._record("prepare", {"prepared": True, **({} if r.existing_channel else names),
                                       "members_wanted": members, "problems": problems},
                           run=run, checklists=checklists)
        self._run = run

    async def _channel_named(self, name: str) -> MMChannel | None | bool:
        """The team's channel of that name; None when there is none; True when there is one the bot may
        not see (someone's private channel: not ours)."""
        try:
            return await self.ctx.gateway.get_channel_by_name(self.row.team_id, name)
        except MattermostError as err:
            if err.status == 404:
                return None
            if err.status == 403:
                return True
            raise

    async def _ours(self, channel: MMChannel) -> bool:
        """A channel of this name that an earlier go created: by the bot, with our display name, and no
        other run's."""
        if (channel.creator_id != self.ctx.bot_user.id or channel.delete_at
                or channel.display_name.strip() != self.row.display_name.strip()):
            return False
        return not await self.ctx.db.run(starts.channel_of_another_run, channel.id, self.row.run_id, readonly=True)

    async def _next_name(self, err: MattermostError) -> str:
        tried = self.row.names_tried + 1
        candidates = list(naming.name_candidates(naming.channel_slug(self.row.display_name)))
        if tried >= len(candidates):
            raise err
        await self._record("channel:name", {"channel_name": candidates[tried], "names_tried": tried})
        return candidates[tried]

    async def _channel(self, last: bool) -> None:
        """Create the channel under the recorded name; one an earlier go created is adopted by that name,
        one someone else holds moves us on to the next name (recorded before trying it)."""
        r = self.row
        pb = self.playbook
        name = r.channel_name
        maybe_made = not self.fresh
        while True:
            if maybe_made:
                existing = await self._channel_named(name)
                if isinstance(existing, MMChannel) and await self._ours(existing):
                    channel = existing
                    break
                if existing is not None:
                    name = await self._next_name(MattermostError(400, CHANNEL_EXISTS, "taken", "", "POST",
                                                                 "/channels"))
                    continue
            try:
                channel = await self.ctx.gateway.create_channel(r.team_id, name, r.display_name,
                                                                private=pb.private_channel)
            except MattermostError as err:
                if err.error_id != CHANNEL_EXISTS:
                    raise
                name = await self._next_name(err)  # taken by someone else (archived channels keep names)
                continue
            self._marked[channel.id] = {}  # brand new: nothing in it to find
            _crash_point(self.ctx, "channel:sent", self.row.name)
            break
        await self._record("channel", {"channel_id": channel.id}, run_values={"channel_id": channel.id})
        self.outcome.channel = channel
        if self._run is not None:
            self._run.channel_id = channel.id

    async def _owner(self, last: bool) -> None:
        """The starter and the owner: nobody is left out of their own run, so a final failure rolls back."""
        r = self.row
        run = await self.run()
        # In an existing channel the bot may not be a member yet: it joins first (it must see the channel's
        # events and post there), as in a channel it creates it is the first member.
        bot = [self.ctx.bot_user.id] if r.existing_channel else []
        for uid in dict.fromkeys([*bot, r.creator_id, run.owner_id]):
            if uid == self.ctx.bot_user.id and not r.existing_channel:
                continue
            try:
                await self.ctx.gateway.add_channel_member(r.channel_id, uid)
            except MattermostError as err:
                if retryable(err):
                    raise
                name = await self._username(uid)
                if err.error_id == NOT_IN_TEAM:
                    raise StepFailed(self.ctx.render("run/problem_not_in_team.md.j2", username=name)) from err
                raise StepFailed(self.ctx.render("run/reason_mattermost.md.j2", step=f"add @{name} to the channel",
                                                 err=err)) from err
        _crash_point(self.ctx, "owner:sent", self.row.name)
        await self._record("owner", {"owner_added": True}, participants=[r.creator_id, run.owner_id])

    async def _members(self, last: bool) -> None:
        """The playbook's other members; adding someone twice is fine (Mattermost ignores it)."""
        r = self.row
        pending = [uid for uid in r.members_wanted if uid not in r.members_added]
        results = await asyncio.gather(*(self.ctx.gateway.add_channel_member(r.channel_id, uid) for uid in pending),
                                       return_exceptions=True)
        added = [uid for uid, res in zip(pending, results, strict=True) if res is None]
        failed = [(uid, res) for uid, res in zip(pending, results, strict=True) if isinstance(res, BaseException)]
        for _, res in failed:
            if not isinstance(res, MattermostError):
                raise res
        if pending:
            _crash_point(self.ctx, "members:sent", self.row.name)
        again = next((res for _, res in failed if retryable(res)), None)
        if again is not None and not last:
            if added:
                await self._record("members:some", {"members_added": [*r.members_added, *added]},
                                   participants=added)
            raise again
        problems = list(r.problems)
        for uid, res in failed:
            assert isinstance(res, MattermostError)
            name = await self._username(uid)
            if res.error_id == NOT_IN_TEAM:
                problems.append(self.ctx.render("run/problem_not_in_team.md.j2", username=name))
            else:
                problems.append(self.ctx.render("run/reason_mattermost.md.j2", step=f"add @{name}", err=res))
        await self._record("members", {"members_added": [*r.members_added, *added], "members_done": True,
                                       "problems": problems}, participants=added)

    async def _admin(self, last: bool) -> None:
        r = self.row
        run = await self.run()
        problems = list(r.problems)
        # Nobody is promoted in a channel the run did not create (as the plugin: created channels only).
        if run.owner_id != self.ctx.bot_user.id and not r.existing_channel:
            try:
                await self.ctx.gateway.set_channel_admin(r.channel_id, run.owner_id)
            except MattermostError as err:
                if retryable(err):
                    raise
                problems.append(self.ctx.render("run/reason_mattermost.md.j2", step=STEPS["admin"], err=err))
            _crash_point(self.ctx, "admin:sent", self.row.name)
        await self._record("admin", {"admin_done": True, "problems": problems})

    def _humans(self, run: Run) -> list[str]:
        r = self.row
        people = dict.fromkeys([r.creator_id, run.owner_id, *r.members_added])
        return [uid for uid in people if uid != self.ctx.bot_user.id]

    async def _categories(self, last: bool) -> None:
        r, pb = self.row, self.playbook
        run = await self.run()
        found = RunOutcome(run_id=r.run_id)
        # A channel that existed before the run stays where each member keeps it (the plugin does not move
        # linked channels either): only channels created for runs are filed.
        if pb.category and not r.existing_channel:
            await file_in_category(self.ctx, r.team_id, r.channel_id, pb.category, self._humans(run), found)
            _crash_point(self.ctx, "categories:sent", self.row.name)
        await self._record("categories", {"filed": True, "problems": [*r.problems, *found.problems]})

    async def _posts(self, last: bool) -> None:
        """The overview, then one interactive post per checklist: rendered as the run will be once started."""
        ctx, r = self.ctx, self.row
        view = await ctx.db.run(runs.load_view, r.run_id, readonly=True)
        assert view is not None
        names = await ctx.users.names(overview_names(view) + [i.assignee_id for _, its in view.checklists
                                                              for i in its])
        if "overview" not in r.posts:
            run = view.run
            # Drawn as it will be once started, the first status update's due time included (the
            # reminder is armed when the start completes, at exactly this time: storage.starts.complete).
            reminder = (Reminder(id="", run_id=run.id, kind=STATUS, interval_s=run.reminder_interval_s,
                                 due_at=run.created_at + run.reminder_interval_s * 1000)
                        if run.status_updates_enabled and run.reminder_interval_s > 0 else None)
            live = RunView(run=run.model_copy(update={"status": "in_progress"}), checklists=view.checklists,
                           participant_ids=view.participant_ids, reminder=reminder)
            message, props = render_overview(ctx, live, names)
            post_id = await self._made(r.channel_id, "overview", "overview", message, props)
            ctx.edits.mark_sent(post_id, str(props[STATE_PROP]))  # the refresh at completion then edits nothing
            await self._record("overview", {"posts": {**r.posts, "overview": post_id}},
                               run_values={"overview_post_id": post_id})
        for index, (checklist, items) in enumerate(view.checklists):
            part, point = f"checklist:{checklist.id}", f"checklist{index + 1}"
            if part in r.posts:
                continue
            message, props = render_checklist(ctx, r.run_id, index + 1, checklist, items, names, ctx.clock.now_ms())
            post_id = await self._made(r.channel_id, part, point, message, props)
            await self._record(point, {"posts": {**r.posts, part: post_id}}, checklist_posts={checklist.id: post_id})

    async def _welcome(self, last: bool) -> None:
        r, pb = self.row, self.playbook
        if not pb.welcome:
            await self._record("welcome", {"posts": {**r.posts, "welcome": ""}})
            return
        try:
            post_id = await self._made(r.channel_id, "welcome", "welcome",
                                       self.ctx.render("run/welcome.md.j2", welcome=pb.welcome), None)
            await self._record("welcome", {"posts": {**r.posts, "welcome": post_id}})
        except MattermostError as err:
            if retryable(err):
                raise
            await self._give_up("welcome", self._reason("welcome", err, gave_up=False))

    async def _broadcasts(self, last: bool) -> None:
        """Announce the run in each broadcast channel, once; a channel that refuses is reported."""
        ctx, r, pb = self.ctx, self.row, self.playbook
        run = await self.run()
        creator = await self._username(r.creator_id)
        owner = await self._username(run.owner_id)
        again: BaseException | None = None
        for name in pb.broadcast_channels:
            key = f"broadcast:{name}"
            if key in r.posts:
                continue
            try:
                target = await ctx.gateway.get_channel_by_name(r.team_id, name)
                text = ctx.render("run/broadcast_started.md.j2", name=r.name, creator=creator, playbook=pb.title,
                                  owner=owner, channel_name=r.channel_name, summary=r.summary)
                post_id = await self._made(target.id, "broadcast", "broadcast", text, None)
                threads = {**(await self.run()).broadcast_threads, target.id: post_id}
                await self._record("broadcast", {"posts": {**r.posts, key: post_id}},
                                   run_values={"broadcast_threads": threads})
                run.broadcast_threads = threads
            except MattermostError as err:
                if retryable(err) and not last:
                    again = again or err
                    continue
                reason = ctx.render("run/reason_mattermost.md.j2", step="post there", err=err)
                await self._record("broadcast:refused", {
                    "posts": {**r.posts, key: ""},
                    "problems": [*r.problems, ctx.render("run/broadcast_denied.md.j2", channel=name, reason=reason)]})
        if again is not None:
            raise again
        await self._record("broadcasts", {"broadcasts_done": True})

    async def _problems(self, last: bool) -> None:
        r = self.row
        post_id = await self._made(r.channel_id, "problems", "problems",
                                   self.ctx.render("run/members_missing.md.j2", problems=r.problems), None)
        await self._record("problems", {"posts": {**r.posts, "problems": post_id}})

    async def _complete(self, last: bool) -> None:
        ok, due = await self.ctx.db.run(starts.complete, self.row.run_id, self.service.holder,
                                        self.ctx.clock.now_ms(), self.service.lease_ms)
        if not ok:
            raise LeaseLost(self.row.run_id)
        self.row.completed = True
        _crash_point(self.ctx, "complete", self.row.name)
        if due is not None and self.ctx.reminders is not None:
            self.ctx.reminders.changed(due)
        # The overview was drawn before the reminder was armed: show its next time.
        schedule_overview_refresh(self.ctx, self.row.run_id)

    async def _told(self, last: bool) -> None:
        r = self.row
        await self.ctx.emit("run_started", r.run_id, actor_id=r.creator_id)
        await self._tell(self.ctx.render("run/started.md.j2", name=r.name, channel_name=r.channel_name,
                                         problems=r.problems))
        _crash_point(self.ctx, "told:sent", self.row.name)
        if not await self.ctx.db.run(starts.finish, r.run_id, self.service.holder, self.ctx.clock.now_ms(), "done"):
            raise LeaseLost(r.run_id)
        r.state, r.told = "done", True
        _crash_point(self.ctx, "told", self.row.name)

    async def _remove_posts(self) -> int:
        """A start in an existing channel leaves it as it was: the posts it made there (recorded, or found
        by their marker among the newest) are deleted; the channel itself is never archived. People it
        added to the channel stay (they may have been invited for good reasons; removing people is not
        the bot's to guess)."""
        r, gateway = self.row, self.ctx.gateway
        made = {pid for key, pid in r.posts.items() if pid and not key.startswith("broadcast")}
        try:
            recent = await gateway.get_channel_posts(r.channel_id, per_page=RECENT_POSTS)
        except MattermostError as err:
            if retryable(err):
                raise
            recent = []
        made |= {p.id for p in recent if p.user_id == self.ctx.bot_user.id and p.props.get(RUN_PROP) == r.run_id}
        removed = 0
        for post_id in sorted(made):
            try:
                await gateway.delete_post(post_id)
                removed += 1
            except MattermostError as err:
                if retryable(err):
                    raise
                # Deleted already (a repeat after a crash answers 403 too), or someone else's to keep.
                log.info("run start rollback could not delete post=%s run=%s: %s", post_id, r.run_id, err.error_id)
        _crash_point(self.ctx, "rollback:sent", self.row.name)
        return removed

    async def _rollback(self) -> None:
        """Leave nothing behind: archive the channel (found by its name if its id was never recorded), or,
        in an existing channel, remove the start's posts from it; mark the run failed, tell the starter why."""
        r = self.row
        last = self._last_try("rollback")
        channel_id = r.channel_id
        archived = removed = ""
        try:
            if r.existing_channel:
                removed = r.channel_name if await self._remove_posts() else ""
            elif not channel_id and r.channel_name and not self.fresh:
                existing = await self._channel_named(r.channel_name)
                if isinstance(existing, MMChannel) and await self._ours(existing):
                    channel_id = existing.id
            if channel_id and not r.existing_channel:
                try:
                    await self.ctx.gateway.archive_channel(channel_id)
                except MattermostError as err:
                    if err.error_id != ALREADY_ARCHIVED:
                        raise
                archived = r.channel_name
                _crash_point(self.ctx, "rollback:sent", self.row.name)
        except Exception as err:  # noqa: BLE001 - retried, and at last given up: the starter is told anyway
            if retryable(err) and not last:
                raise _Retry("rollback", err) from err
            log.warning("could not undo a failed run start in its channel run=%s channel=%s: %s", r.run_id,
                        channel_id, err)
        await self._record("rollback", {"channel_id": channel_id},
                           run_values={"status": "failed", "channel_id": channel_id} if r.prepared else None)
        await self._tell(self.ctx.render("run/start_failed.md.j2", name=r.name, reason=r.reason,
                                         archived=archived, removed=removed))
        _crash_point(self.ctx, "rollback:told", self.row.name)
        if not await self.ctx.db.run(starts.finish, r.run_id, self.service.holder, self.ctx.clock.now_ms(), "failed"):
            raise LeaseLost(r.run_id)
        r.state, r.told = "failed", True


def _build_checklists(ctx: Context, pb: Playbook, run_id: str, now: int, owner_id: str, creator_id: str,
                      by_name: dict[str, MMUser], problems: list[str], values: dict[str, Any] | None = None
                      ) -> list[tuple[Checklist, list[ChecklistItem]]]:
    out = []
    for ci, spec in enumerate(pb.checklists):
        checklist = Checklist(id=new_id(), run_id=run_id, position=ci, title=spec.title)
        items = []
        for ii, item in enumerate(spec.items):
            assignee = ""
            if item.assignee is not None and item.assignee.kind == "owner":
                assignee = owner_id
            elif item.assignee is not None and item.assignee.kind == "creator":
                assignee = creator_id
            elif item.assignee is not None:
                user = by_name.get(item.assignee.username)
                if user is None:
                    problems.append(ctx.render("run/problem_no_assignee.md.j2",
                                               username=item.assignee.username, item=item.title))
                assignee = user.id if user else ""
            items.append(ChecklistItem(
                id=new_id(), run_id=run_id, checklist_id=checklist.id, position=ii, title=item.title,
                description=item.description, assignee_id=assignee, command=item.command or "",
                due_at=now + int(item.due.total_seconds() * 1000) if item.due else None, updated_at=now,
                condition=dict(item.when or {}), hidden=not holds(item.when, values or {}),
                auto_check=item.auto_check.as_dict() if item.auto_check else {}))
        out.append((checklist, items))
    return out


async def notify_starter(ctx: Context, plan: RunPlan, text: str) -> None:
    await notify(ctx, plan.creator_id, plan.origin_channel_id, text, response_url=plan.response_url)


def spawn_run(ctx: Context, plan: RunPlan) -> None:
    """Start the run in a tracked follow-up; the starter hears how it went either way."""
    follow_up(ctx, execute_run(ctx, plan), name=f"run-start:{plan.playbook.id}", user_id=plan.creator_id,
              channel_id=plan.origin_channel_id, response_url=plan.response_url,
              failure=lambda: ctx.render("run/start_failed.md.j2", name=plan.name,
                                         reason=ctx.render("errors/internal.md.j2")))


def start_dialog(ctx: Context, team_id: str, channel_id: str, viewer: Viewer) -> dict[str, Any]:
    """The "Run a playbook" dialog: choose among the playbooks `viewer` may run, name the run, summarise it."""
    user_id = viewer.user_id
    choices = team_playbooks(ctx, team_id, viewer)
    if not choices:
        raise UserError(ctx.render("commands/unknown_playbook.md.j2", query="", choices=[]))
    options = [{"text": p.title[:DIALOG_TEXT_MAX], "value": p.id} for p in choices]
    return {
        "callback_id": "start_run",
        "title": "Run a playbook",
        "introduction_text": ctx.render("run/dialog_intro.md.j2"),
        "submit_label": "Start run",
        "state": ctx.dialog_state(StartRunDialog(team_id, channel_id), user_id, channel_id, team_id),
        "elements": [
            {"display_name": "Playbook", "name": "playbook", "type": "select", "options": options,
             "default": choices[0].id if len(choices) == 1 else ""},
            {"display_name": "Run name", "name": "name", "type": "text", "max_length": DIALOG_TEXT_MAX,
             "optional": True, "default": choices[0].title[:DIALOG_TEXT_MAX] if len(choices) == 1 else "",
             "help_text": "Left empty, the playbook's title is used."},
            {"display_name": "Summary", "name": "summary", "type": "textarea", "optional": True,
             "max_length": MAX_SUMMARY, "placeholder": "What is going on? Shown on the run's overview."},
            *dialog_elements(ctx, choices),
        ],
    }


@router.dialog(StartRunDialog)
async def run_dialog_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    ref = sub.ref
    assert isinstance(ref, StartRunDialog)
    fields = Fields(ctx, sub)
    wanted = fields.choice("playbook")
    name = fields.text("name", None)  # prepare_run bounds the name and the summary, as for the command
    summary = fields.text("summary", None)
    # Chosen again among those the person may run now: a dialog's answer is only what the client sent.
    choices = team_playbooks(ctx, ref.team_id, await viewer_for(ctx, sub.user_id, (ref.team_id,)))
    playbook = next((p for p in choices if p.id == wanted), None)
    if playbook is None:
        fields.error("playbook", ctx.render("run/error_playbook.md.j2"))
    values = dialog_values(ctx, fields, playbook, several=len(choices) > 1) \
        if playbook is not None else {}
    if fields.errors or playbook is None:
        return DialogErrors(errors=fields.errors)
    # A FieldError (name or summary too long, a required property left empty) is shown under its field.
    plan = prepare_run(ctx, playbook, name, summary, sub.user_id, ref.team_id, ref.channel_id,
                       properties=values)
    spawn_run(ctx, plan)
    return NoReply()
