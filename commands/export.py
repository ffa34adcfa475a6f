"""`/playbook export`: the run's report, as a Markdown file posted in its channel (handlers/reports.py)."""
from __future__ import annotations

from bot.context import Context
from bot.domain.permissions import Action
from bot.notify import follow_up
from bot.router import Ephemeral, Reply, Router, SlashCommand
from commands.targets import target_run
from handlers.reports import export_to_channel

router = Router("export")


@router.command("export", usage="[--run <name>]")
async def export_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Post the run's report (summary, timeline, updates, checklists, retro) in its channel as a Markdown file."""
    target = await target_run(ctx, cmd, Action.VIEW, statuses=("in_progress", "finished"), takes_args=False)
    run = target.run
    follow_up(ctx, export_to_channel(ctx, run.id, cmd.user_id), name=f"export:{run.id}", user_id=cmd.user_id,
              channel_id=cmd.channel_id, response_url=cmd.response_url)
    return Ephemeral(ctx.render("reports/preparing.md.j2", run=run))
