"""Checklist items from the message box: check, uncheck, skip, unskip, add, remove, assign, due,
run-command.

An item is named by its number as the checklist post shows it (`2.3`) or by words of its title. State
and assignee changes go through handlers.items.change_item, the path the buttons use, so the rows and
the timeline change exactly as after a click; the checklist post and the overview are re-rendered from
rows right after the answer (handlers.views.refresh_checklist_later: coalesced follow-ups), so a
command answers in milliseconds.
"""
from __future__ import annotations

from datetime import datetime

from bot.context import Context
from bot.domain import args as A
from bot.domain.durations import DurationError, parse_due
from bot.domain.permissions import Action
from bot.router import Ephemeral, Reply, Router, SlashCommand, UserError
from commands.selection import viewer_zone
from commands.targets import (
    Lists,
    add_to_channel,
    find_checklist,
    find_item,
    find_person,
    target_run,
    usage_error,
)
from handlers import notices, sidebar
from handlers.due import due_changed
from handlers.item_commands import run_item_command
from handlers.items import change_item
from handlers.views import refresh_checklist_later, schedule_overview_refresh
from storage import items, people

router = Router("items")

ITEM = "<item: 2.3 or title words>"


async def _item_verb(cmd: SlashCommand, ctx: Context, name: str, verb: str) -> Reply:
    target = await target_run(ctx, cmd, Action.WORK, with_items=True)
    lists = target.lists or []
    number, item = find_item(ctx, name, target.args, lists)
    change = await change_item(ctx, target.run.id, item.id, verb, cmd.user_id)
    if change is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    if change.changed:
        refresh_checklist_later(ctx, target.run.id, item.checklist_id)
    return Ephemeral(ctx.render("commands/item_changed.md.j2", verb=verb, number=number,
                                title=change.item.title, changed=change.changed, state=change.item.state))


@router.command("check", usage=f"{ITEM} [--run <name>]")
async def item_check(cmd: SlashCommand, ctx: Context) -> Reply:
    """Mark an item done."""
    return await _item_verb(cmd, ctx, "check", "check")


@router.command("uncheck", usage=f"{ITEM} [--run <name>]")
async def item_uncheck(cmd: SlashCommand, ctx: Context) -> Reply:
    """Mark a done item as open again."""
    return await _item_verb(cmd, ctx, "uncheck", "uncheck")


@router.command("skip", usage=f"{ITEM} [--run <name>]")
async def item_skip(cmd: SlashCommand, ctx: Context) -> Reply:
    """Skip an item that does not apply."""
    return await _item_verb(cmd, ctx, "skip", "skip")


@router.command("unskip", usage=f"{ITEM} [--run <name>]")
async def item_restore(cmd: SlashCommand, ctx: Context) -> Reply:
    """Bring back a skipped (or done) item as open (the button's Restore)."""
    # Named `unskip` because `/playbook restore` reopens a finished run (commands/lifecycle.py).
    return await _item_verb(cmd, ctx, "unskip", "restore")


@router.command("add", usage="<checklist: number or title> <item title> [--run <name>]")
async def item_add(cmd: SlashCommand, ctx: Context) -> Reply:
    """Add an item to the end of a checklist."""
    target = await target_run(ctx, cmd, Action.WORK, with_items=True)
    lists = target.lists or []
    if not target.args:
        raise usage_error(ctx, "add", "checklist_missing")
    lookup, raw_title = A.split_checklist_and_title(target.args, [c.title for c, _ in lists])
    number, checklist = find_checklist(ctx, "add", lookup, lists)
    if not raw_title:
        raise usage_error(ctx, "add", "title_missing")
    title, problem = A.clean_title(raw_title)
    if problem:
        raise usage_error(ctx, "add", f"title_{problem}", length=len(raw_title), limit=A.MAX_TITLE)
    item = await ctx.db.run(items.add_item, target.run.id, checklist.id, title, cmd.user_id, ctx.clock.now_ms())
    if item is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    refresh_checklist_later(ctx, target.run.id, checklist.id)
    return Ephemeral(ctx.render("commands/item_added.md.j2", number=f"{number}.{item.position + 1}",
                                title=title, checklist=checklist.title))


@router.command("remove", usage=f"{ITEM} [--run <name>]")
async def item_remove(cmd: SlashCommand, ctx: Context) -> Reply:
    """Delete an item from its checklist."""
    target = await target_run(ctx, cmd, Action.WORK, with_items=True)
    lists = target.lists or []
    number, item = find_item(ctx, "remove", target.args, lists)
    removed = await ctx.db.run(items.remove_item, target.run.id, item.id, cmd.user_id, ctx.clock.now_ms())
    if removed is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    refresh_checklist_later(ctx, target.run.id, item.checklist_id)
    return Ephemeral(ctx.render("commands/item_removed.md.j2", number=number, title=item.title))


@router.command("assign", usage=f"{ITEM} <@user | me | nobody> [--run <name>]")
async def item_assign(cmd: SlashCommand, ctx: Context) -> Reply:
    """Give an item to someone; they join the run if they have not yet."""
    target = await target_run(ctx, cmd, Action.WORK, with_items=True)
    if len(target.args) < 2:
        raise usage_error(ctx, "assign", "assign_missing")
    lists = target.lists or []
    number, item = find_item(ctx, "assign", target.args[:-1], lists)
    user = await find_person(ctx, cmd, "assign", target.args[-1], allow_nobody=True)
    run = target.run
    joined = False
    if user is not None:
        participant, _ = await ctx.db.run(people.membership, run.id, user.id, readonly=True)
        if not participant:
            # Assigning someone makes them a participant and adds them to the run's channel. Mattermost
            # refuses people outside the run's team (404) - that is the team-membership check.
            refusal = await add_to_channel(ctx, run.channel_id, user.id, cmd.user_id)
            if refusal:
                raise UserError(ctx.render("commands/cannot_add_person.md.j2", username=user.username,
                                           reason=refusal, run=run.name))
            added = await ctx.db.run(people.add_participant, run.id, user.id, cmd.user_id, ctx.clock.now_ms(),
                                     f"@{user.username} (assigned {number})")
            # They were not in the run and are now, whichever wrote the row: this command, or the channel's
            # user_added event a moment earlier (which then welcomed and filed them), as for /playbook join.
            joined = True
            if added:
                notices.welcome(ctx, run, user.id)
                sidebar.file_joiner(ctx, run, user.id)
            schedule_overview_refresh(ctx, run.id)  # it names who is in the run
    change = await change_item(ctx, run.id, item.id, "assign", cmd.user_id,
                               assignee_id=user.id if user else "")
    if change is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    if change.changed:
        refresh_checklist_later(ctx, run.id, item.checklist_id)
        if user is not None:
            notices.item_assigned(ctx, run, number, item, user.id, cmd.user_id, reply_channel_id=cmd.channel_id)
    return Ephemeral(ctx.render("commands/item_assigned.md.j2", number=number, title=item.title,
                                username=user.username if user else "", changed=change.changed,
                                joined=joined))


def _split_due(args: tuple[str, ...], now: datetime) -> tuple[tuple[str, ...], int | None, str]:
    """(item words, due ms or None for off, problem). The due date is the last one or two words."""
    last_error = ""
    for n in (2, 1):
        if len(args) <= n:
            continue
        text = " ".join(args[-n:])
        if len(text) > A.MAX_ARG:
            return (), None, "due_bad:" + "that date is far too long to be one"
        try:
            due = parse_due(text, now, allow_off=True)
        except DurationError as err:
            if n == 1:
                last_error = str(err)
            continue
        return args[:-n], None if due is None else int(due.timestamp() * 1000), ""
    return (), None, "due_bad:" + last_error if last_error else "due_missing"


@router.command("due", usage=f"{ITEM} <2h | 3d | 2026-03-01 | 2026-03-01 14:00 | off> [--run <name>]")
async def item_due(cmd: SlashCommand, ctx: Context) -> Reply:
    """Set when an item is due (from now, or a UTC date), or clear it with off."""
    target = await target_run(ctx, cmd, Action.WORK, with_items=True)
    if len(target.args) < 2:
        raise usage_error(ctx, "due", "due_missing")
    words, due_ms, problem = _split_due(target.args, ctx.clock.now())
    if problem:
        kind, _, reason = problem.partition(":")
        raise usage_error(ctx, "due", kind, reason=reason)
    lists = target.lists or []
    number, item = find_item(ctx, "due", words, lists)
    changed_item, changed = await ctx.db.run(items.set_due, target.run.id, item.id, due_ms, cmd.user_id,
                                             ctx.clock.now_ms())
    if changed_item is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    if changed:
        refresh_checklist_later(ctx, target.run.id, item.checklist_id)
        due_changed(ctx, due_ms)
    return Ephemeral(ctx.render("commands/item_due.md.j2", number=number, title=item.title, due_at=due_ms,
                                tz=await viewer_zone(ctx, cmd.user_id),
                                changed=changed))


@router.command("run-command", usage=f"{ITEM} [--run <name>]")
async def item_run_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Run an item's slash command as you (if signed in to the web view), else hand it over, filled in.

    $variables come from the run summary. Running as you needs a web view sign-in with Mattermost."""
    target = await target_run(ctx, cmd, Action.WORK, with_items=True)
    lists: Lists = target.lists or []
    number, item = find_item(ctx, "run-command", target.args, lists)
    # handlers/item_commands.py: Mattermost runs it as the person with their own token (POST
    # /api/v4/commands/execute), or the bot hands it over; the timeline records which (docs/commands.md).
    return Ephemeral(await run_item_command(ctx, target.run, item, number, cmd.user_id))
