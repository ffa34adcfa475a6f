"""Starting a run: the channel, its members, their sidebar category, the overview and checklist posts.

The "Run a playbook" dialog is here too; `/playbook run` (commands/run.py) parses what was typed.

`prepare_run` checks everything that can be checked without Mattermost, so the slash command (or the
dialog) answers within milliseconds; `execute_run` does the slow part in a tracked follow-up task.

Order matters for "no orphan half-state": the channel is created first; if that fails nothing exists.
If storing the run then fails, the new channel is archived again. Later steps (members, categories,
posts, broadcasts) each report their own failure in the run channel and to the starter, and the run
goes on: a run the user can see with a clear notice beats a run that silently vanished.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from bot.actions import StartRunDialog
from bot.context import Context
from bot.domain import naming
from bot.models import MattermostError, MMChannel, MMUser
from bot.notify import follow_up, notify
from bot.playbooks import Playbook
from bot.router import DialogErrors, DialogSubmission, FieldError, NoReply, Reply, Router, UserError
from handlers.fields import DIALOG_TEXT_MAX, DIALOG_TEXTAREA_MAX, Fields
from handlers.sidebar import file_in_category
from handlers.views import overview_names, render_checklist, render_overview
from storage import runs
from storage.ids import new_id
from storage.models import Checklist, ChecklistItem, Run

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


@dataclass
class RunOutcome:
    run_id: str = ""
    channel: MMChannel | None = None
    problems: list[str] = field(default_factory=list)
    error: str = ""


def team_playbooks(ctx: Context, team_id: str) -> list[Playbook]:
    """Playbooks usable in a team: those without `team`, and those naming this team."""
    team = ctx.teams.get(team_id)
    out = [p for p in ctx.playbooks.values() if not p.team or (team is not None and p.team == team.name)]
    return sorted(out, key=lambda p: p.title.lower())


def prepare_run(ctx: Context, playbook: Playbook, name: str, summary: str, creator_id: str, team_id: str,
                origin_channel_id: str, response_url: str = "") -> RunPlan:
    """Check what can be checked before Mattermost is called; a refusal is a FieldError naming the
    dialog's field (`playbook`, `name`, `summary`), shown as text to a slash command."""
    if playbook not in team_playbooks(ctx, team_id):
        team = ctx.teams.get(team_id)
        raise FieldError("playbook", ctx.render("commands/playbook_other_team.md.j2", playbook=playbook.title,
                                                team=playbook.team, here=team.name if team else team_id))
    name = name.strip()
    if len(name) > MAX_RUN_NAME:
        raise FieldError("name", ctx.render("commands/name_too_long.md.j2", length=len(name), limit=MAX_RUN_NAME))
    summary = summary.strip()
    if len(summary) > MAX_SUMMARY:
        raise FieldError("summary", ctx.render("run/summary_too_long.md.j2", length=len(summary),
                                               limit=MAX_SUMMARY))
    # Control and format characters go, as Mattermost strips them from display names.
    name = naming.clean_display_name(name, limit=MAX_RUN_NAME) or playbook.title
    return RunPlan(playbook, name, summary, creator_id, team_id, origin_channel_id, response_url)


async def execute_run(ctx: Context, plan: RunPlan) -> RunOutcome:
    outcome = RunOutcome()
    pb = plan.playbook
    now = ctx.clock.now_ms()
    # One call for every username the playbook names (owner, members, item assignees).
    wanted = [pb.owner] if pb.owner else []
    wanted += list(pb.members)
    wanted += [i.assignee.username for c in pb.checklists for i in c.items
               if i.assignee is not None and i.assignee.kind == "user"]
    by_name = await ctx.users.by_username(wanted)
    creator = await ctx.users.get(plan.creator_id)
    owner = by_name.get(pb.owner.lower()) if pb.owner else creator
    if owner is None:
        outcome.problems.append(ctx.render("run/problem_no_user.md.j2", username=pb.owner, role="owner"))
        owner = creator
    owner_id = owner.id if owner else plan.creator_id

    seq = await ctx.db.run(runs.next_seq, plan.team_id, pb.id)
    display = naming.render_display_name(pb.channel_name, seq=seq, name=plan.name, when=ctx.clock.now(),
                                         owner=owner.username if owner else "", playbook=pb.title)
    try:
        channel = await _create_channel(ctx, plan.team_id, display, pb.private_channel)
    except MattermostError as err:
        if err.error_id == CHANNEL_LIMIT:
            outcome.error = ctx.render("run/reason_channel_limit.md.j2", err=err)
        else:
            outcome.error = ctx.render("run/reason_mattermost.md.j2", step="create the channel", err=err)
        await notify_starter(ctx, plan, ctx.render("run/start_failed.md.j2", name=plan.name,
                                                   reason=outcome.error))
        return outcome
    outcome.channel = channel

    # Members: creator, owner, invited members. Users missing or outside the team are reported.
    member_ids: list[str] = []
    for uid in dict.fromkeys([plan.creator_id, owner_id]):
        member_ids.append(uid)
    for username in pb.members:
        user = by_name.get(username.lower())
        if user is None:
            outcome.problems.append(ctx.render("run/problem_no_user.md.j2", username=username, role="member"))
        elif user.id not in member_ids:
            member_ids.append(user.id)
    added = await _add_members(ctx, channel, member_ids, by_id={u.id: u for u in by_name.values()},
                               problems=outcome.problems)

    run = Run(id=new_id(), seq=seq, name=plan.name, summary=plan.summary, playbook_id=pb.id,
              playbook_title=pb.title, team_id=plan.team_id, channel_id=channel.id,
              private=pb.private_channel, owner_id=owner_id, creator_id=plan.creator_id,
              created_at=now, status_updates_enabled=bool(pb.status_updates.enabled),
              reminder_interval_s=int(pb.status_updates.interval.total_seconds()) if pb.status_updates.enabled else 0,
              retrospective_enabled=bool(pb.retrospective.enabled),
              retrospective_reminder_s=int(pb.retrospective.reminder_interval.total_seconds())
              if pb.retrospective.reminder_interval else 0,
              participants_may_finish=bool(getattr(pb, "participants_may_finish", False)),
              archive_on_finish=pb.archive_channel_on_finish)
    checklists = _build_checklists(ctx, pb, run.id, now, owner_id, plan.creator_id, by_name, outcome.problems)
    participants = [uid for uid in member_ids if uid in added or uid == owner_id]
    try:
        await ctx.db.run(runs.store_new_run, run, checklists, participants, now)
    except Exception:
        log.exception("storing a new run failed run=%s channel=%s", run.id, channel.id)
        await _archive_quietly(ctx, channel.id)
        outcome.error = ctx.render("run/reason_storage.md.j2")
        await notify_starter(ctx, plan, ctx.render("run/start_failed.md.j2", name=plan.name,
                                                   reason=outcome.error))
        return outcome
    outcome.run_id = run.id

    if owner_id in added:
        try:
            await ctx.gateway.set_channel_admin(channel.id, owner_id)
        except MattermostError as err:
            outcome.problems.append(ctx.render("run/reason_mattermost.md.j2", step="make the owner a channel admin",
                                               err=err))

    # Posts, sidebar categories and broadcasts are independent: run them side by side.
    humans = [uid for uid in participants if uid in added and uid != ctx.bot_user.id]
    await asyncio.gather(
        _post_run_messages(ctx, run.id, pb, outcome),
        file_in_category(ctx, run.team_id, channel.id, pb.category, humans, outcome),
    )
    await _broadcast_start(ctx, run, pb, channel, creator, owner, outcome)
    if outcome.problems:
        await _post_problems(ctx, channel.id, outcome.problems)
    if ctx.reminders is not None:
        await ctx.reminders.run_started(run.id)
    await notify_starter(ctx, plan, ctx.render("run/started.md.j2", name=plan.name,
                                               channel_name=channel.name, problems=outcome.problems))
    if ctx.hooks is not None:
        await ctx.hooks.emit("run_started", run.id, actor_id=plan.creator_id)
    return outcome


def _build_checklists(ctx: Context, pb: Playbook, run_id: str, now: int, owner_id: str, creator_id: str,
                      by_name: dict[str, MMUser], problems: list[str]) -> list[tuple[Checklist, list[ChecklistItem]]]:
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
                due_at=now + int(item.due.total_seconds() * 1000) if item.due else None, updated_at=now))
        out.append((checklist, items))
    return out




async def _create_channel(ctx: Context, team_id: str, display: str, private: bool) -> MMChannel:
    """Create the channel, trying another URL name when one is taken (archived channels keep theirs)."""
    last: MattermostError | None = None
    for slug in naming.name_candidates(naming.channel_slug(display)):
        try:
            return await ctx.gateway.create_channel(team_id, slug, display, private=private)
        except MattermostError as err:
            if err.error_id != CHANNEL_EXISTS:
                raise
            last = err
    assert last is not None
    raise last


async def _add_members(ctx: Context, channel: MMChannel, user_ids: list[str], by_id: dict[str, MMUser],
                       problems: list[str]) -> set[str]:
    added: set[str] = {ctx.bot_user.id}  # the creator of the channel is a member already

    async def add(uid: str) -> None:
        if uid == ctx.bot_user.id:
            return
        try:
            await ctx.gateway.add_channel_member(channel.id, uid)
            added.add(uid)
        except MattermostError as err:
            user = by_id.get(uid) or await ctx.users.get(uid)
            name = user.username if user else uid
            if err.error_id == NOT_IN_TEAM:
                problems.append(ctx.render("run/problem_not_in_team.md.j2", username=name))
            else:
                problems.append(ctx.render("run/reason_mattermost.md.j2", step=f"add @{name}", err=err))

    await asyncio.gather(*(add(uid) for uid in user_ids))
    return added


async def _post_run_messages(ctx: Context, run_id: str, pb: Playbook, outcome: RunOutcome) -> None:
    view = await ctx.db.run(runs.load_view, run_id, readonly=True)
    assert view is not None  # stored a moment ago; runs are never deleted
    names = await ctx.users.names(overview_names(view) + [i.assignee_id for _, its in view.checklists
                                                          for i in its])
    try:
        message, props = render_overview(ctx, view, names)
        overview = await ctx.gateway.create_post(view.run.channel_id, message, props=props)
        post_ids: dict[str, str] = {}
        for index, (checklist, items) in enumerate(view.checklists):
            message, props = render_checklist(ctx, run_id, index + 1, checklist, items, names,
                                              ctx.clock.now_ms())
            post = await ctx.gateway.create_post(view.run.channel_id, message, props=props)
            post_ids[checklist.id] = post.id
        await ctx.db.run(runs.save_post_ids, run_id, overview.id, post_ids)
        if pb.welcome:
            await ctx.gateway.create_post(view.run.channel_id, ctx.render("run/welcome.md.j2", welcome=pb.welcome))
    except MattermostError as err:
        outcome.problems.append(ctx.render("run/reason_mattermost.md.j2", step="post the checklists", err=err))


async def _broadcast_start(ctx: Context, run: Run, pb: Playbook, channel: MMChannel, creator: MMUser | None,
                           owner: MMUser | None, outcome: RunOutcome) -> None:
    threads: dict[str, str] = {}
    for name in pb.broadcast_channels:
        try:
            target = await ctx.gateway.get_channel_by_name(run.team_id, name)
            post = await ctx.gateway.create_post(target.id, ctx.render(
                "run/broadcast_started.md.j2", name=run.name, creator=creator.username if creator else "",
                playbook=pb.title, owner=owner.username if owner else "", channel_name=channel.name,
                summary=run.summary))
            threads[target.id] = post.id
        except MattermostError as err:
            outcome.problems.append(ctx.render("run/broadcast_denied.md.j2", channel=name,
                                               reason=ctx.render("run/reason_mattermost.md.j2",
                                                                 step="post there", err=err)))
    if threads:
        await ctx.db.run(runs.set_broadcast_threads, run.id, threads)


async def _post_problems(ctx: Context, channel_id: str, problems: list[str]) -> None:
    try:
        await ctx.gateway.create_post(channel_id, ctx.render("run/members_missing.md.j2", problems=problems))
    except MattermostError:
        log.warning("could not post the problems notice channel=%s", channel_id)


async def _archive_quietly(ctx: Context, channel_id: str) -> None:
    try:
        await ctx.gateway.archive_channel(channel_id)
    except MattermostError:
        log.warning("could not archive the channel of a failed run channel=%s", channel_id)


async def notify_starter(ctx: Context, plan: RunPlan, text: str) -> None:
    await notify(ctx, plan.creator_id, plan.origin_channel_id, text, response_url=plan.response_url)


def spawn_run(ctx: Context, plan: RunPlan) -> None:
    """Start the run in a tracked follow-up; the starter hears how it went either way."""
    follow_up(ctx, execute_run(ctx, plan), name=f"run-start:{plan.playbook.id}", user_id=plan.creator_id,
              channel_id=plan.origin_channel_id, response_url=plan.response_url,
              failure=lambda: ctx.render("run/start_failed.md.j2", name=plan.name,
                                         reason=ctx.render("errors/internal.md.j2")))


def start_dialog(ctx: Context, team_id: str, channel_id: str, user_id: str) -> dict[str, Any]:
    """The "Run a playbook" dialog: choose the playbook, name the run, summarise it."""
    choices = team_playbooks(ctx, team_id)
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
    playbook = next((p for p in team_playbooks(ctx, ref.team_id) if p.id == wanted), None)
    if playbook is None:
        fields.error("playbook", ctx.render("run/error_playbook.md.j2"))
    if fields.errors or playbook is None:
        return DialogErrors(errors=fields.errors)
    # A FieldError (name or summary too long) is shown under its field by the dispatcher.
    plan = prepare_run(ctx, playbook, name, summary, sub.user_id, ref.team_id, ref.channel_id)
    spawn_run(ctx, plan)
    return NoReply()
