"""Run housekeeping from the message box: `rename`, `summary`, `checklist add|rename|move`.

Participants may do each (as they may work the run; bot/domain/permissions.py Action.WORK). The change
is stored and on the timeline before the answer; the posts follow (handlers/housekeeping.py).
"""
from __future__ import annotations

from bot.context import Context
from bot.domain import args as A
from bot.domain.permissions import Action
from bot.router import Ephemeral, Reply, Router, SlashCommand, UserError
from commands.targets import find_checklist, target_run, usage_error
from handlers.housekeeping import clean_name, edit_dialog, rename, resummarize, show_later, summary_problem
from storage import items

router = Router("housekeeping")

CHECKLIST_VERBS = ("add", "rename", "move")


@router.command("rename", usage="<new name> [--run <name>]")
async def run_rename(cmd: SlashCommand, ctx: Context) -> Reply:
    """Give the run a new name."""
    target = await target_run(ctx, cmd, Action.WORK)
    if not target.args:
        raise usage_error(ctx, "rename", "name_missing")
    name, problem = clean_name(ctx, " ".join(target.args))
    if problem:
        raise UserError(problem)
    if name == target.run.name:
        return Ephemeral(ctx.render("housekeeping/unchanged.md.j2", what="name", name=name))
    await rename(ctx, target.run, name, cmd.user_id, cmd.channel_id)
    return Ephemeral(ctx.render("housekeeping/edited.md.j2", name=name, renamed=True, summarized=False))


@router.command("summary", usage="[<new summary>] [--run <name>]")
async def run_summary(cmd: SlashCommand, ctx: Context) -> Reply:
    """Change the run's summary; without text, edit the name and summary in a form."""
    target = await target_run(ctx, cmd, Action.WORK)
    if not target.args:
        if not cmd.trigger_id:
            raise usage_error(ctx, "summary", "summary_missing")
        return edit_dialog(ctx, target.run, cmd.user_id, cmd.channel_id, cmd.team_id)
    summary = " ".join(target.args).strip()
    if problem := summary_problem(ctx, summary):
        raise UserError(problem)
    if summary == target.run.summary:
        return Ephemeral(ctx.render("housekeeping/unchanged.md.j2", what="summary", name=target.run.name))
    await resummarize(ctx, target.run, summary, cmd.user_id, cmd.channel_id)
    return Ephemeral(ctx.render("housekeeping/edited.md.j2", name=target.run.name, renamed=False,
                                summarized=True))


@router.command("checklist", usage="add <title> | rename <checklist> <title> | move <checklist> <position> "
                                   "[--run <name>]")
async def run_checklist(cmd: SlashCommand, ctx: Context) -> Reply:
    """Add a checklist to the run, rename one, or move one to another position."""
    target = await target_run(ctx, cmd, Action.WORK, with_items=True)
    lists = target.lists or []
    if not target.args or target.args[0].lower() not in CHECKLIST_VERBS:
        raise usage_error(ctx, "checklist", "checklist_verb",
                          query=A.shown(target.args[0]) if target.args else "")
    verb, rest = target.args[0].lower(), target.args[1:]
    now = ctx.clock.now_ms()
    run = target.run
    if verb == "add":
        title, problem = A.clean_title(" ".join(rest))
        if problem:
            raise usage_error(ctx, "checklist", "title_missing" if not rest else f"title_{problem}",
                              length=len(" ".join(rest)), limit=A.MAX_TITLE)
        added = await ctx.db.run(items.add_checklist, run.id, title, cmd.user_id, now)
        if added is None:
            raise UserError(ctx.render("errors/item_gone.md.j2"))
        show_later(ctx, run.id, cmd.user_id, cmd.channel_id)
        return Ephemeral(ctx.render("housekeeping/checklist_added.md.j2", number=added.position + 1, title=title))
    if not rest:
        raise usage_error(ctx, "checklist", "checklist_missing")
    titles = [c.title for c, _ in lists]
    if verb == "rename":
        lookup, raw_title = A.split_checklist_and_title(rest, titles)
        number, checklist = find_checklist(ctx, "checklist", lookup, lists)
        title, problem = A.clean_title(raw_title)
        if problem:
            raise usage_error(ctx, "checklist", "title_missing" if not raw_title else f"title_{problem}",
                              length=len(raw_title), limit=A.MAX_TITLE)
        renamed = await ctx.db.run(items.rename_checklist, run.id, checklist.id, title, cmd.user_id, now)
        if renamed is None:
            raise UserError(ctx.render("errors/item_gone.md.j2"))
        show_later(ctx, run.id, cmd.user_id, cmd.channel_id)
        return Ephemeral(ctx.render("housekeeping/checklist_renamed.md.j2", number=number, before=renamed[1],
                                    title=title))
    # move <checklist> <position>
    if len(rest) < 2:
        raise usage_error(ctx, "checklist", "position_missing")
    lookup = A.find_checklist(" ".join(rest[:-1]), titles)
    number, checklist = find_checklist(ctx, "checklist", lookup, lists)
    position = rest[-1]
    if not position.isdigit() or not 1 <= int(position) <= len(lists):
        raise usage_error(ctx, "checklist", "position_bad", query=A.shown(position), count=len(lists))
    moved = await ctx.db.run(items.move_checklist, run.id, checklist.id, int(position) - 1, cmd.user_id, now)
    if moved is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    show_later(ctx, run.id, cmd.user_id, cmd.channel_id)
    return Ephemeral(ctx.render("housekeeping/checklist_moved.md.j2", title=checklist.title, before=number,
                                after=int(position), order=[c.title for c in moved]))
