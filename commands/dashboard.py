"""`/playbook dashboard`: the way into the web view (runs, insights, reports) from chat."""
from __future__ import annotations

from bot import signin
from bot.context import Context
from bot.domain import args as A
from bot.router import Ephemeral, Reply, Router, SlashCommand
from commands.targets import usage_error

router = Router("dashboard")


@router.command("dashboard")
async def dashboard(cmd: SlashCommand, ctx: Context) -> Reply:
    """Open the web view of runs, insights and reports (a sign-in link just for you)."""
    if cmd.rest:
        raise usage_error(ctx, "dashboard", "extra_args", what="arguments", query=A.shown(" ".join(cmd.rest)))
    sign_in = ctx.sign_in
    if sign_in is not None and sign_in.app is not None:
        return Ephemeral(ctx.render("commands/dashboard.md.j2", url=f"{ctx.public_url}/runs", one_time=False))
    # No OAuth app: the slash command proved who is asking (its trigger id); a link only they get, once.
    link = await signin.new_link(ctx, cmd.user_id)
    return Ephemeral(ctx.render("commands/dashboard.md.j2", url=link, one_time=True,
                                minutes=signin.LINK_LIFETIME_MS // 60_000))
