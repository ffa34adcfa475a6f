"""`/playbook settings`: a person's own settings (the daily and weekly digests, handlers.digests; the
messages about items and runs given to them, handlers.notices)."""
from __future__ import annotations

from bot.context import Context
from bot.domain import args as A
from bot.router import Ephemeral, Reply, Router, SlashCommand
from commands.targets import usage_error
from storage import settings as digests

router = Router("settings")

SWITCH = {"on": True, "off": False}


@router.command("settings", usage="[digest|weekly-digest|assigned|owner|due on|off]")
async def settings_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Show your settings, or turn your digests or the messages about items and runs given to you on or off."""
    args = tuple(a.lower() for a in cmd.rest)
    if not args:
        row = await ctx.db.run(digests.get_settings, cmd.user_id, readonly=True)
        return Ephemeral(ctx.render("commands/settings.md.j2", row=row, hour=_hour(ctx), changed=""))
    if len(args) != 2 or args[0] not in digests.FLAGS or args[1] not in SWITCH:
        raise usage_error(ctx, "settings", "settings_bad", query=A.shown(" ".join(cmd.rest)))
    row = await ctx.db.run(digests.set_setting, cmd.user_id, args[0], SWITCH[args[1]])
    return Ephemeral(ctx.render("commands/settings.md.j2", row=row, hour=_hour(ctx), changed=args[0]))


def _hour(ctx: Context) -> int:
    return ctx.settings.digests.hour
