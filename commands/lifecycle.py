"""A run's life from the message box: `update` (a status update), `request-update` (ask the owner for
one), `finish`, `restore`, `retro`.

Each command finds the run (commands/targets.py: by channel or `--run`, the same for every command),
checks the person may do it (bot/domain/permissions.py), and hands over to the feature that does it:
handlers/status.py, handlers/finish.py, handlers/retro.py, which the buttons and dialogs use too.
"""
from __future__ import annotations

from bot.context import Context
from bot.domain import args as A
from bot.domain.permissions import Action
from bot.router import Reply, Router, SlashCommand
from commands.targets import target_run, usage_error
from handlers.finish import finish_request, restore_run
from handlers.retro import retro_cancel, retro_dialog
from handlers.status import request_update, update_dialog

router = Router("lifecycle")

BOTH = ("in_progress", "finished")
RETRO_CANCEL = ("cancel", "none", "skip")


@router.command("update", usage="[--run <name>]")
async def update_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Post a status update: opens a form prefilled with the last one."""
    target = await target_run(ctx, cmd, Action.WORK, takes_args=False)
    return await update_dialog(ctx, target.run, cmd.user_id, cmd.channel_id, cmd.team_id)


@router.command("finish", usage="[--run <name>]")
async def finish_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Finish the run (asks first when checklist items are still open)."""
    target = await target_run(ctx, cmd, Action.FINISH, takes_args=False)
    return await finish_request(ctx, target.run, cmd.user_id, cmd.channel_id, cmd.team_id)


@router.command("restore", usage="[--run <name>]")
async def restore_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Reopen a finished run."""
    target = await target_run(ctx, cmd, Action.RESTORE, statuses=("finished",), takes_args=False)
    return await restore_run(ctx, target.run, cmd.user_id, cmd.channel_id)


@router.command("retro", usage="[cancel] [--run <name>]")
async def retro_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Write and publish the run's retrospective; `retro cancel` if it needs none."""
    target = await target_run(ctx, cmd, Action.WORK, statuses=BOTH)
    if not target.args:
        return await retro_dialog(ctx, target.run, cmd.user_id, cmd.channel_id, cmd.team_id)
    if len(target.args) == 1 and target.args[0].lower() in RETRO_CANCEL:
        return await retro_cancel(ctx, target.run, cmd.user_id, cmd.channel_id)
    raise usage_error(ctx, "retro", "extra_args", what="words besides `cancel` and `--run`",
                      query=A.shown(" ".join(target.args)))


@router.command("request-update", usage="[--run <name>]")
async def request_update_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Ask the run's owner for a status update: a mention in the run's channel, at most every 10 minutes."""
    target = await target_run(ctx, cmd, Action.VIEW, takes_args=False)
    return await request_update(ctx, target.run, cmd.user_id, cmd.channel_id)
