"""Runs as a whole: list, info, owner, todo."""
from __future__ import annotations

from bot.context import Context
from bot.domain import args as A
from bot.domain.checklists import progress
from bot.domain.conditions import shown_properties
from bot.domain.permissions import Action
from bot.notify import follow_up
from bot.router import Ephemeral, Reply, Router, SlashCommand, UserError
from commands.selection import command_viewer, viewer_zone
from commands.targets import add_to_channel, find_person, target_run, usage_error
from handlers import notices, sidebar
from handlers.views import refresh_checklist_later, schedule_overview_refresh
from storage import actions as run_actions
from storage import people, reminders, runs
from storage.models import Run

router = Router("runs")

LIST_LIMIT = 25


def run_handle(run: Run) -> str:
    """How to type this run after `--run`: its name when that survives splitting, else its id."""
    name = run.name
    if name and len(name) <= 40 and all(c.isalnum() or c in "-_." for c in name):
        return name
    if name and len(name) <= 40 and not any(c in name for c in '"`\\') and name.isprintable():
        return f'"{name}"'
    return run.id


@router.command("list", usage="[mine]")
async def run_list(cmd: SlashCommand, ctx: Context) -> Reply:
    """List the runs in progress in this team (or only yours)."""
    if len(cmd.rest) > 1 or (cmd.rest and cmd.rest[0].lower() not in ("mine", "all")):
        raise usage_error(ctx, "list", "list_filter", query=A.shown(" ".join(cmd.rest)))
    mine = bool(cmd.rest) and cmd.rest[0].lower() == "mine"
    viewer = await command_viewer(ctx, cmd)
    lines, total = await ctx.db.run(runs.run_lines, viewer, cmd.team_id, mine, LIST_LIMIT, readonly=True)
    names = await ctx.users.names([line.run.owner_id for line in lines])
    return Ephemeral(ctx.render("commands/list.md.j2", lines=lines, total=total, mine=mine, names=names,
                                more=max(0, total - len(lines)), here=cmd.channel_id,
                                handles={line.run.id: run_handle(line.run) for line in lines}))


@router.command("info", usage="[--run <name>]")
async def run_info(cmd: SlashCommand, ctx: Context) -> Reply:
    """Show the run's summary, owner, progress and next status update."""
    target = await target_run(ctx, cmd, Action.VIEW, statuses=("in_progress", "finished"), with_items=True,
                              takes_args=False)
    run = target.run
    lists = target.lists or []
    reminder = await ctx.db.run(reminders.status_reminder, run.id, readonly=True)
    participants = await ctx.db.run(people.participant_ids, run.id, readonly=True)
    links = await ctx.db.run(run_actions.run_links, run.id, readonly=True)
    names = await ctx.users.names([run.owner_id])
    prog = progress([i.state for _, items in lists for i in items])
    mine = [(f"{c.position + 1}.{i.position + 1}", i) for c, items in lists for i in items
            if i.assignee_id == cmd.user_id and i.state in ("open", "in_progress")]
    now = ctx.clock.now_ms()
    next_at = reminder.due_at if reminder and run.status == "in_progress" else None
    playbook = await ctx.run_playbook(run)  # the version the run started from
    return Ephemeral(ctx.render(
        "commands/info.md.j2", tz=await viewer_zone(ctx, cmd.user_id), run=run,
        owner=names.get(run.owner_id, ""), done=prog.done, total=prog.total,
        percent=prog.percent, participants=len(participants), next_at=next_at,
        overdue=bool(next_at and next_at < now), checklists=[(c, items) for c, items in lists],
        mine=mine, participant=target.participant or run.owner_id == cmd.user_id,
        follower=target.follower, now=now, properties=shown_properties(run.property_defs, run.properties),
        version=playbook.version if playbook is not None else 0, links=links))


@router.command("owner", usage="[@user] [--run <name>]")
async def run_owner(cmd: SlashCommand, ctx: Context) -> Reply:
    """Show the run's owner, or hand the run to someone else."""
    probe = await target_run(ctx, cmd, Action.VIEW)
    run = probe.run
    if not probe.args:
        names = await ctx.users.names([run.owner_id])
        return Ephemeral(ctx.render("commands/owner_show.md.j2", owner=names.get(run.owner_id, ""),
                                    run=run.name))
    if len(probe.args) > 1:
        raise usage_error(ctx, "owner", "extra_args", what="more than one person",
                          query=A.shown(" ".join(probe.args[1:])))
    target = await target_run(ctx, cmd, Action.CHANGE_OWNER)
    user = await find_person(ctx, cmd, "owner", target.args[0])
    assert user is not None  # "nobody" is not allowed here
    if user.id == run.owner_id:
        return Ephemeral(ctx.render("commands/owner_same.md.j2", username=user.username))
    participant, _ = await ctx.db.run(people.membership, run.id, user.id, readonly=True)
    if not participant:
        refusal = await add_to_channel(ctx, run.channel_id, user.id, cmd.user_id)
        if refusal:
            raise UserError(ctx.render("commands/cannot_add_person.md.j2", username=user.username,
                                       reason=refusal, run=run.name))
    names = await ctx.users.names([run.owner_id, cmd.user_id])
    async with ctx.locks(run.id):
        before, changed, moved = await ctx.db.run(
            people.set_owner, run.id, user.id, cmd.user_id, ctx.clock.now_ms(),
            f"@{names.get(run.owner_id, run.owner_id)} to @{user.username}", f"@{user.username} (new owner)")
    if before != run.owner_id:
        names.update(await ctx.users.names([before]))
    if changed:
        schedule_overview_refresh(ctx, run.id)
        for checklist_id in dict.fromkeys(i.checklist_id for i in moved):
            refresh_checklist_later(ctx, run.id, checklist_id)
        notices.made_owner(ctx, run, user.id, cmd.user_id, before, moved, reply_channel_id=cmd.channel_id)
        if not participant:  # new to the run: welcomed and filed as its first members were
            notices.welcome(ctx, run, user.id)
            sidebar.file_joiner(ctx, run, user.id)
        text = ctx.render("commands/owner_changed_post.md.j2", actor=names.get(cmd.user_id, ""),
                          before=names.get(before, ""), after=user.username)
        if run.channel_id:
            follow_up(ctx, ctx.gateway.create_post(run.channel_id, text), name=f"owner-post:{run.id}",
                      user_id=cmd.user_id, channel_id=cmd.channel_id, response_url=cmd.response_url)
    return Ephemeral(ctx.render("commands/owner_changed.md.j2", username=user.username,
                                before=names.get(before, ""), changed=changed))


@router.command("todo")
async def run_todo(cmd: SlashCommand, ctx: Context) -> Reply:
    """Your open items and overdue status updates, across all runs."""
    if cmd.rest:
        raise usage_error(ctx, "todo", "extra_args", what="arguments", query=A.shown(" ".join(cmd.rest)))
    now = ctx.clock.now_ms()
    todo = await ctx.db.run(runs.todo, cmd.user_id, now, readonly=True)
    return Ephemeral(ctx.render("commands/todo.md.j2", tz=await viewer_zone(ctx, cmd.user_id),
                                items=todo.items, overdue=todo.overdue_updates,
                                now=now))
