"""`/playbook help`, and what an unknown or empty subcommand answers: the list of commands."""
from __future__ import annotations

from typing import Any

from bot.router import Ephemeral, Reply, Router, SlashCommand

router = Router("help")


def help_reply(cmd: SlashCommand, ctx: Any, root: Router) -> Reply:
    commands = sorted((c for c in root.commands.values() if not c.hidden), key=lambda c: c.name)
    text = ctx.render("commands/help.md.j2", commands=commands, unknown=cmd.subcommand
                      if cmd.subcommand and cmd.subcommand not in root.commands else "")
    return Ephemeral(text)


@router.command("help")
async def help_command(cmd: SlashCommand, ctx: Any) -> Reply:
    """Show these commands."""
    return help_reply(cmd, ctx, ctx.router)
