"""`/playbook playbooks`: the playbooks one may run in this team, with their versions and links; system
admins also archive, restore and duplicate them here (storage/playbooks.py) until the web view's editor."""
from __future__ import annotations

import functools
from pathlib import Path

from bot.context import Context
from bot.domain import args as A
from bot.playbooks import PlaybookInvalid
from bot.playbooks.loader import check_file_name
from bot.playbooks.model import TITLE_MAX
from bot.router import Ephemeral, Reply, Router, SlashCommand, UserError
from commands.selection import command_viewer
from commands.targets import usage_error
from handlers.runs import team_playbooks
from handlers.schedules import next_run_at
from storage import playbooks as store

router = Router("playbooks")

USAGE = "[archive <id> | restore <id> | duplicate <id> <new id>]"
ADMIN_VERBS = ("archive", "restore", "duplicate")


@router.command("playbooks")
async def playbooks_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """List the playbooks you may run in this team, with their versions."""
    if not cmd.rest:
        return await _list(cmd, ctx)
    verb, words = cmd.rest[0].lower(), cmd.rest[1:]
    if verb not in ADMIN_VERBS:
        raise usage_error(ctx, "playbooks", "extra_args", what="arguments besides archive, restore or duplicate",
                          query=A.shown(" ".join(cmd.rest)))
    if not await ctx.is_admin(cmd.user_id):
        raise UserError(ctx.render("commands/playbooks_admin_only.md.j2", verb=verb))
    wanted = 2 if verb == "duplicate" else 1
    if len(words) != wanted:
        raise UserError(ctx.render("commands/usage.md.j2", problem=ctx.render(
            "commands/playbooks_ids.md.j2", verb=verb, wanted=wanted), usage=f"/playbook playbooks {USAGE}"))
    now = ctx.clock.now_ms()
    pid = words[0].lower()
    try:
        if verb == "duplicate":
            new_pid = words[1].lower()
            try:
                check_file_name(Path(f"{new_pid}.toml"))
            except PlaybookInvalid as exc:
                raise UserError(ctx.render("commands/playbooks_bad_id.md.j2", id=words[1],
                                           problem=exc.errors[0].problem)) from None
            source = await ctx.db.run(store.current_version, pid, readonly=True)
            title = f"Copy of {source.data.get('title', pid)}"[:TITLE_MAX] if source else None
            version = await ctx.db.run(functools.partial(store.duplicate, title=title, author_id=cmd.user_id),
                                       pid, new_pid, now)
            changed = True
            pid = version.playbook_id
        elif verb == "archive":
            changed = await ctx.db.run(store.archive, pid, now)
        else:
            changed = await ctx.db.run(store.restore, pid, now)
    except store.NoSuchPlaybook:
        raise UserError(ctx.render("commands/playbooks_unknown.md.j2", id=pid)) from None
    except store.PlaybookExists:
        raise UserError(ctx.render("commands/playbooks_taken.md.j2", id=words[-1])) from None
    if ctx.library is not None:
        await ctx.library.check_now()  # this process sees it at once; the others within seconds
    return Ephemeral(ctx.render("commands/playbooks_changed.md.j2", verb=verb, id=pid, changed=changed,
                                source=words[0].lower(), url=f"{ctx.public_url}/playbooks/{pid}"))


async def _list(cmd: SlashCommand, ctx: Context) -> Reply:
    entries = {e.record.id: e for e in await ctx.db.run(store.list_playbooks, readonly=True)}
    lines = []
    for playbook in team_playbooks(ctx, cmd.team_id, await command_viewer(ctx, cmd)):
        entry = entries.get(playbook.id)
        version = entry.version if entry is not None else None
        lines.append({"playbook": playbook, "number": playbook.version,
                      "source": version.source if version is not None else "",
                      "commit": version.source_commit[:12] if version is not None else "",
                      "error": bool(entry and entry.record.error),
                      "next_run": next_run_at(playbook, ctx.clock.now_ms()),
                      "timezone": playbook.schedule.timezone if playbook.schedule else "",
                      "url": f"{ctx.public_url}/playbooks/{playbook.id}"})
    return Ephemeral(ctx.render("commands/playbooks.md.j2", lines=lines))
