"""An item's slash command, run as the person who asks: `/playbook run-command` and the item's *Run command*
button.

Where the person gave the bot a token of their own (signed in to the web view with their Mattermost account:
bot/signin.py keeps it encrypted, refreshes it, and signing out revokes it), the bot asks Mattermost to run
the command as them (`POST /api/v4/commands/execute` with their token, in the run's channel and team), as the
Playbooks plugin does with `SlashCommand.Execute` (server/app/playbook_run_service.go
RunChecklistItemSlashCommand). Mattermost decides as for anything they type: they must be able to post in
the channel. Otherwise, or when Mattermost no longer accepts their token, the command is handed to them
with the run's values filled in, to send themselves, and they are told how to let the bot run it. Every
outcome is on the run's timeline (`command_ran`: who, which command, the answer or the error).
"""
from __future__ import annotations

import logging

from bot import signin
from bot.actions import RunItemCommand
from bot.context import Context
from bot.domain import args as A
from bot.domain.permissions import Action
from bot.models import MattermostError, MMCommandResponse
from bot.router import TRIGGER, Click, Ephemeral, Reply, Router, UserError
from handlers.access import allowed
from storage import items
from storage.models import ChecklistItem, Run

log = logging.getLogger(__name__)

router = Router("item-commands")

RESPONSE_SHOWN = 1000  # characters of the command's answer told to the person
RESPONSE_KEPT = 2000  # ... and kept on the timeline


def command_of(ctx: Context, run: Run, item: ChecklistItem, number: str) -> str:
    """The item's command with the run summary's `$variables` filled in; a UserError when it has none or a
    variable is not defined."""
    command = item.command.strip()
    if not command:
        raise UserError(ctx.render("commands/no_item_command.md.j2", number=number, title=item.title))
    expansion = A.expand_command(command, A.summary_variables(run.summary))
    if expansion.undefined:
        raise UserError(ctx.render("commands/undefined_variables.md.j2", number=number, title=item.title,
                                   command=command, names=expansion.undefined))
    return expansion.command


async def run_item_command(ctx: Context, run: Run, item: ChecklistItem, number: str, user_id: str) -> str:
    """Run the item's command as `user_id` where they gave the bot their token, else hand it over; what to
    tell them."""
    command = command_of(ctx, run, item, number)
    if own_command(command):
        # Mattermost would call the bot's own slash command from inside this one, nesting command calls
        # and holding the gateway's workers: the person sends it themselves.
        log.info("item command is the bot's own /%s: handed over user=%s run=%s", TRIGGER, user_id, run.id)
        return await _hand_over(ctx, run, item, number, user_id, command, "own")
    held, refused = await signin.person_token(ctx, user_id)
    if held is None:
        return await _hand_over(ctx, run, item, number, user_id, command, "refused" if refused else _hint(ctx))
    try:
        response = await _execute(ctx, run, held, command)
    except _NotRenewed:
        log.info("item command: the person's token could not be renewed now user=%s run=%s", user_id, run.id)
        return await _hand_over(ctx, run, item, number, user_id, command, "unavailable")
    except MattermostError as err:
        if err.status == 401:
            log.info("item command: Mattermost refused the person's token user=%s run=%s", user_id, run.id)
            return await _hand_over(ctx, run, item, number, user_id, command, "refused")
        reason = _reason(err)
        log.info("item command failed user=%s run=%s status=%s error_id=%s", user_id, run.id, err.status,
                 err.error_id)
        await ctx.db.run(items.record_command, run.id, item.id, command, user_id, ctx.clock.now_ms(), "failed",
                         {"status": err.status, "error_id": err.error_id, "error": err.message[:RESPONSE_KEPT]})
        return ctx.render("commands/command_failed.md.j2", number=number, title=item.title, command=command,
                          reason=reason, trigger=command.split()[0], status=err.status,
                          message=err.message[:RESPONSE_SHOWN], run=run.name)
    answer = response.text.strip()
    await ctx.db.run(items.record_command, run.id, item.id, command, user_id, ctx.clock.now_ms(), "ran",
                     {"response": answer[:RESPONSE_KEPT]})
    log.info("item command ran as user=%s run=%s item=%s", user_id, run.id, item.id)
    return ctx.render("commands/command_ran.md.j2", number=number, title=item.title, command=command,
                      run=run.name, answer=answer[:RESPONSE_SHOWN], cut=len(answer) > RESPONSE_SHOWN)


def own_command(command: str) -> bool:
    """Whether `command` is the bot's own slash command (/playbook ...), in any case (to be safe)."""
    words = command.strip().split(maxsplit=1)
    return bool(words) and words[0].lower() == "/" + TRIGGER


class _NotRenewed(Exception):
    """Mattermost refused the person's token and could not renew it now (5xx, no answer, 429): the session
    is kept, the command handed over."""


async def _execute(ctx: Context, run: Run, held: signin.PersonToken, command: str) -> MMCommandResponse:
    """Execute as the person; on a 401 refresh their token once and try again (the command did not run:
    Mattermost refuses a token before anything else). Still refused: the session is ended, 401 raised;
    the refresh could not be done now: _NotRenewed."""
    try:
        return await ctx.gateway.execute_command(held.token, run.channel_id, run.team_id, command)
    except MattermostError as err:
        if err.status != 401:
            raise
        renewed, unavailable = await signin.renew_refused(ctx, held)
        if unavailable:
            raise _NotRenewed() from err
        if renewed is None:
            raise
    try:
        return await ctx.gateway.execute_command(renewed.token, run.channel_id, run.team_id, command)
    except MattermostError as err:
        if err.status == 401:
            await signin.end_session(ctx, renewed)
        raise


async def _hand_over(ctx: Context, run: Run, item: ChecklistItem, number: str, user_id: str, command: str,
                     hint: str) -> str:
    await ctx.db.run(items.record_command, run.id, item.id, command, user_id, ctx.clock.now_ms(), "handed_over")
    return ctx.render("commands/command_ready.md.j2", number=number, title=item.title, command=command,
                      hint=hint, login_url=f"{ctx.public_url}/login")


def _hint(ctx: Context) -> str:
    """How the person could let the bot run it: sign in with Mattermost, where the bot has an OAuth app."""
    return "signin" if ctx.sign_in is not None and ctx.sign_in.app is not None else ""


def _reason(err: MattermostError) -> str:
    if err.status == 0:
        return "no_answer"
    if err.status == 403:
        return "cannot_post"
    if err.error_id == "api.command.execute_command.not_found.app_error":
        return "not_found"
    if err.error_id == "api.command.execute_command.deleted.error":
        return "archived"
    if err.error_id in ("api.command.disabled.app_error", "api.command.execute_command.site_url_required.app_error"):
        return "disabled"
    if err.status >= 500:
        return "integration"
    return "other"


@router.click(RunItemCommand)
async def run_command_click(click: Click, ctx: Context) -> Reply:
    ref = click.ref
    assert isinstance(ref, RunItemCommand)
    run = await allowed(ctx, ref.run_id, click.user_id, Action.WORK, in_progress=True)
    found = await ctx.db.run(items.item_of_run, ref.run_id, ref.item_id, readonly=True)
    if found is None:
        return Ephemeral(ctx.render("errors/item_gone.md.j2"))
    item, number = found
    return Ephemeral(await run_item_command(ctx, run, item, number, click.user_id))
