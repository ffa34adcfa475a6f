"""Which run a command means, without numbers to remember.

In a channel with one run in progress, that run. With several (or outside a run channel), the run is
named with `--run <name or id>`; a wrong or missing name lists the choices. Only runs the person may
see are ever matched or listed.
"""
from __future__ import annotations

from bot.context import Context
from bot.domain.permissions import Viewer
from bot.router import SlashCommand, UserError
from storage import runs
from storage.models import Run

MAX_CHOICES = 10
MAX_CANDIDATES = 500  # runs a name is matched against
STATUSES = ("in_progress", "finished")


def take_run_flag(args: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """Split `--run <name>` / `--run=<name>` out of the arguments (anywhere in them)."""
    out: list[str] = []
    query: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--run":
            if i + 1 >= len(args):
                query = ""
                i += 1
                continue
            query = args[i + 1]
            i += 2
            continue
        if arg.startswith("--run="):
            query = arg[len("--run="):]
        else:
            out.append(arg)
        i += 1
    return query, tuple(out)


async def command_viewer(ctx: Context, cmd: SlashCommand) -> Viewer:
    """Who typed the command, as the permission rules see them (their roles come from a short cache)."""
    user = await ctx.users.get(cmd.user_id)
    # Mattermost runs a command only for someone who may post in its channel: that proves membership.
    viewer = Viewer(cmd.user_id, bool(user and user.is_admin), frozenset({cmd.team_id}),
                    member_of=frozenset({cmd.channel_id}), is_guest=bool(user and user.is_guest),
                    username=user.username if user else "", groups=await ctx.viewer_groups(cmd.user_id))
    return ctx.with_hidden_playbooks(viewer)


async def select_run(ctx: Context, cmd: SlashCommand, args: tuple[str, ...], *,
                     statuses: tuple[str, ...] = ("in_progress",)) -> tuple[Run, tuple[str, ...]]:
    """The run `cmd` is about and the arguments left once `--run` is taken out."""
    query, rest = take_run_flag(args)
    viewer = await command_viewer(ctx, cmd)
    if query is None:
        # Everyone in a channel sees the runs in it (they read its posts); guests only those they are in.
        here, _ = await ctx.db.run(runs.visible_runs, viewer, [cmd.team_id], cmd.channel_id,
                                   statuses, False, MAX_CANDIDATES, readonly=True)
        if len(here) == 1:
            return here[0], rest
        if not here:
            await _refuse_other_status(ctx, cmd, viewer, statuses, channel_id=cmd.channel_id)
            others, _ = await ctx.db.run(runs.visible_runs, viewer, [cmd.team_id], "", statuses, False,
                                         MAX_CANDIDATES, readonly=True)
            raise UserError(ctx.render("commands/no_run_here.md.j2", command=cmd.subcommand,
                                       choices=others[:MAX_CHOICES], more=max(0, len(others) - MAX_CHOICES),
                                       statuses=statuses))
        raise UserError(ctx.render("commands/which_run.md.j2", command=cmd.subcommand,
                                   choices=here[:MAX_CHOICES], more=max(0, len(here) - MAX_CHOICES)))
    found, _ = await ctx.db.run(runs.visible_runs, viewer, [cmd.team_id], "", statuses, False, MAX_CANDIDATES,
                                readonly=True)
    wanted = query.strip().lower()
    exact = [r for r in found if r.id == query or r.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0], rest
    partial = exact or [r for r in found if wanted and wanted in r.name.lower()]
    if len(partial) == 1:
        return partial[0], rest
    if not partial:
        await _refuse_other_status(ctx, cmd, viewer, statuses, query=query)
    raise UserError(ctx.render("commands/unknown_run.md.j2", query=query, command=cmd.subcommand,
                               choices=(partial or found)[:MAX_CHOICES],
                               ambiguous=len(partial) > 1,
                               more=max(0, len(partial or found) - MAX_CHOICES)))


async def _refuse_other_status(ctx: Context, cmd: SlashCommand, viewer: Viewer, statuses: tuple[str, ...], *,
                               channel_id: str = "", query: str = "") -> None:
    """No run with one of `statuses` was meant, but one run in another state was (the run in this
    channel, or the one named by `query`): say what state it is in and what can be done, instead of
    "no run is called that"."""
    others = tuple(s for s in STATUSES if s not in statuses)
    if not others:
        return
    found, _ = await ctx.db.run(runs.visible_runs, viewer, [cmd.team_id], channel_id, others, False,
                                MAX_CANDIDATES, readonly=True)
    if query:
        wanted = query.strip().lower()
        found = ([r for r in found if r.id == query or r.name.lower() == wanted]
                 or [r for r in found if wanted and wanted in r.name.lower()])
    if len(found) == 1:
        run = found[0]
        raise UserError(ctx.render("commands/run_other_status.md.j2", name=run.name, status=run.status,
                                   command=cmd.subcommand, here=bool(channel_id),
                                   named=query or "", finished_at=run.finished_at))


async def viewer_zone(ctx: Context, user_id: str) -> str:
    """The time zone a person set in Mattermost (for times in replies only they read); "" = UTC."""
    user = await ctx.users.get(user_id)
    return user.timezone if user else ""
