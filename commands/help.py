"""`/playbook help`; what an empty subcommand answers (the list of commands); and what a mistyped one
answers: the nearest commands by edit distance with their usage, or a pointer to help, never the whole
list again."""
from __future__ import annotations

from typing import Any

from bot.domain.suggest import closest
from bot.router import Ephemeral, Reply, Router, SlashCommand

router = Router("help")


def help_reply(cmd: SlashCommand, ctx: Any, root: Router) -> Reply:
    commands = sorted((c for c in root.commands.values() if not c.hidden), key=lambda c: c.name)
    if cmd.subcommand and cmd.subcommand not in root.commands:
        names = closest(cmd.subcommand, [c.name for c in commands])
        return Ephemeral(ctx.render("commands/unknown_command.md.j2", unknown=cmd.subcommand,
                                    suggestions=[root.commands[n] for n in names]))
    return Ephemeral(ctx.render("commands/help.md.j2", commands=commands))


@router.command("help")
async def help_command(cmd: SlashCommand, ctx: Any) -> Reply:
    """Show these commands."""
    return help_reply(cmd, ctx, ctx.router)
