"""Taking part in a run and following it: join, leave, follow, unfollow.

Participants work the run; followers only hear about it (status updates, finish). Joining also follows
and adds the person to the run's channel; leaving keeps the channel (leave it as any channel) and
keeps following until `unfollow`.
"""
from __future__ import annotations

from bot.context import Context
from bot.domain.permissions import Action
from bot.router import Ephemeral, Reply, Router, SlashCommand, UserError
from commands.targets import add_to_channel, target_run
from handlers import notices, sidebar
from handlers.views import schedule_overview_refresh
from storage import people

router = Router("people")


@router.command("join", usage="[--run <name>]")
async def run_join(cmd: SlashCommand, ctx: Context) -> Reply:
    """Become a participant: work the run and join its channel."""
    target = await target_run(ctx, cmd, Action.JOIN, takes_args=False)
    run = target.run
    if target.participant:
        return Ephemeral(ctx.render("commands/joined.md.j2", run=run.name, already=True))
    # Channel first: if Mattermost refuses, nothing is recorded.
    refusal = await add_to_channel(ctx, run.channel_id, cmd.user_id, cmd.user_id)
    if refusal:
        raise UserError(ctx.render("commands/cannot_add_person.md.j2", username=cmd.user_name,
                                   reason=refusal, run=run.name))
    joined = await ctx.db.run(people.add_participant, run.id, cmd.user_id, cmd.user_id, ctx.clock.now_ms(),
                              f"@{cmd.user_name}")
    if joined:  # (else the channel's user_added event recorded them a moment earlier, welcomed and filed them)
        notices.welcome(ctx, run, cmd.user_id)
        sidebar.file_joiner(ctx, run, cmd.user_id)
    schedule_overview_refresh(ctx, run.id)  # it names who is in the run
    return Ephemeral(ctx.render("commands/joined.md.j2", run=run.name, already=False))


@router.command("leave", usage="[--run <name>]")
async def run_leave(cmd: SlashCommand, ctx: Context) -> Reply:
    """Stop being a participant (the owner hands the run over first)."""
    target = await target_run(ctx, cmd, Action.LEAVE, takes_args=False)
    await ctx.db.run(people.remove_participant, target.run.id, cmd.user_id, cmd.user_id, ctx.clock.now_ms(),
                     f"@{cmd.user_name}")
    schedule_overview_refresh(ctx, target.run.id)
    return Ephemeral(ctx.render("commands/left.md.j2", run=target.run.name))


@router.command("follow", usage="[--run <name>]")
async def run_follow(cmd: SlashCommand, ctx: Context) -> Reply:
    """Get the run's status updates and news by direct message."""
    target = await target_run(ctx, cmd, Action.VIEW, takes_args=False)
    changed = await ctx.db.run(people.follow, target.run.id, cmd.user_id)
    return Ephemeral(ctx.render("commands/followed.md.j2", run=target.run.name, follow=True, changed=changed))


@router.command("unfollow", usage="[--run <name>]")
async def run_unfollow(cmd: SlashCommand, ctx: Context) -> Reply:
    """Stop getting the run's updates by direct message."""
    target = await target_run(ctx, cmd, Action.VIEW, takes_args=False)
    changed = await ctx.db.run(people.unfollow, target.run.id, cmd.user_id)
    return Ephemeral(ctx.render("commands/followed.md.j2", run=target.run.name, follow=False, changed=changed))
