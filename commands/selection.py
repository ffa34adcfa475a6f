"""Which run a command means, without numbers to remember.

In a channel with one run in progress, that run. With several (or outside a run channel), the run is
named with `--run <name or id>`; a wrong or missing name lists the choices. Only runs the person may
see are ever matched or listed.
"""
from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.context import Context
from bot.router import SlashCommand, UserError
from storage.models import Participant, Run

MAX_CHOICES = 10


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


def _candidates(session: Any, team_id: str, channel_id: str, user_id: str, is_admin: bool,
                statuses: tuple[str, ...], in_channel: bool) -> list[Run]:
    query = select(Run).where(Run.team_id == team_id, col(Run.status).in_(statuses))
    if in_channel:
        query = query.where(Run.channel_id == channel_id)
    if not is_admin:
        mine = select(Participant.run_id).where(Participant.user_id == user_id)
        query = query.where(col(Run.id).in_(mine) | (Run.private == False) | (Run.owner_id == user_id))  # noqa: E712
    return list(session.exec(query.order_by(col(Run.created_at).desc()).limit(500)))


async def select_run(ctx: Context, cmd: SlashCommand, args: tuple[str, ...], *,
                     statuses: tuple[str, ...] = ("in_progress",)) -> tuple[Run, tuple[str, ...]]:
    """The run `cmd` is about and the arguments left once `--run` is taken out."""
    query, rest = take_run_flag(args)
    is_admin = await ctx.is_admin(cmd.user_id) if query is not None else False
    if query is None:
        here = await ctx.db.run(_candidates, cmd.team_id, cmd.channel_id, cmd.user_id, True, statuses, True,
                                readonly=True)
        if len(here) == 1:
            return here[0], rest
        if not here:
            others = await ctx.db.run(_candidates, cmd.team_id, cmd.channel_id, cmd.user_id,
                                      await ctx.is_admin(cmd.user_id), statuses, False, readonly=True)
            raise UserError(ctx.render("commands/no_run_here.md.j2", command=cmd.subcommand,
                                       choices=others[:MAX_CHOICES], more=max(0, len(others) - MAX_CHOICES),
                                       statuses=statuses))
        raise UserError(ctx.render("commands/which_run.md.j2", command=cmd.subcommand,
                                   choices=here[:MAX_CHOICES], more=max(0, len(here) - MAX_CHOICES)))
    runs = await ctx.db.run(_candidates, cmd.team_id, cmd.channel_id, cmd.user_id, is_admin, statuses, False,
                            readonly=True)
    wanted = query.strip().lower()
    exact = [r for r in runs if r.id == query or r.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0], rest
    partial = exact or [r for r in runs if wanted and wanted in r.name.lower()]
    if len(partial) == 1:
        return partial[0], rest
    raise UserError(ctx.render("commands/unknown_run.md.j2", query=query, command=cmd.subcommand,
                               choices=(partial or runs)[:MAX_CHOICES],
                               ambiguous=len(partial) > 1,
                               more=max(0, len(partial or runs) - MAX_CHOICES)))
