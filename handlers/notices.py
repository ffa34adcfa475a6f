"""Personal notices: a direct message to someone a change is about, when it is about them and someone
else made it — an item given to them, a run handed to them. Each can be turned off in
`/playbook settings` (storage.settings FLAGS). They are follow-ups: the person who made the change gets
their answer at once, and hears if the notice could not be sent.
"""
from __future__ import annotations

import logging

from bot.context import Context
from bot.models import MattermostError
from bot.notify import follow_up, notify
from handlers.announce import permalink
from storage import settings as personal
from storage.items import checklist_post_id
from storage.models import ChecklistItem, Run

log = logging.getLogger(__name__)


def item_assigned(ctx: Context, run: Run, number: str, item: ChecklistItem, assignee_id: str, actor_id: str,
                  *, reply_channel_id: str) -> None:
    """Tell `assignee_id` that `actor_id` gave them item `number` (nothing when they gave it themselves)."""
    if not assignee_id or assignee_id == actor_id or assignee_id == ctx.bot_user.id:
        return

    async def send() -> None:
        if not await ctx.db.run(personal.wants, assignee_id, "assigned", readonly=True):
            return
        names = await ctx.users.names([actor_id])
        person = await ctx.users.get(assignee_id)
        await _dm(ctx, assignee_id, ctx.render(
            "notices/item_assigned.md.j2", actor=names.get(actor_id, ""), number=number, title=item.title,
            tz=person.timezone if person else "",
            run=run.name, due_at=item.due_at, link=await _run_link(ctx, run, item.checklist_id)))

    follow_up(ctx, send(), name=f"notice-assigned:{item.id}", user_id=actor_id, channel_id=reply_channel_id)


def made_owner(ctx: Context, run: Run, owner_id: str, actor_id: str, before_id: str,
               moved: list[ChecklistItem], *, reply_channel_id: str) -> None:
    """Tell the new owner the run is theirs, and which of the previous owner's open items came with it."""
    if owner_id == actor_id or owner_id == ctx.bot_user.id:
        return

    async def send() -> None:
        if not await ctx.db.run(personal.wants, owner_id, "owner", readonly=True):
            return
        names = await ctx.users.names([actor_id, before_id])
        await _dm(ctx, owner_id, ctx.render(
            "notices/made_owner.md.j2", actor=names.get(actor_id, ""), before=names.get(before_id, ""),
            run=run.name, items=[i.title for i in moved], link=await _run_link(ctx, run, "")))

    follow_up(ctx, send(), name=f"notice-owner:{run.id}", user_id=actor_id, channel_id=reply_channel_id)


def welcome(ctx: Context, run: Run, user_id: str) -> None:
    """Someone became a participant after the start (join, assign, made owner, added to the channel):
    they see the playbook's welcome, as the starters saw it in the channel, privately."""
    if user_id == ctx.bot_user.id:
        return

    async def send() -> None:
        playbook = await ctx.run_playbook(run)  # the version the run started from
        if playbook is None or not playbook.welcome:
            return
        text = ctx.render("notices/welcome.md.j2", run=run.name, welcome=playbook.welcome)
        await notify(ctx, user_id, run.channel_id, text)

    follow_up(ctx, send(), name=f"welcome:{run.id}:{user_id}", user_id=user_id, channel_id=run.channel_id)


async def _run_link(ctx: Context, run: Run, checklist_id: str) -> str:
    """A permalink to the checklist's post (or the overview), where the buttons are."""
    post_id = ""
    if checklist_id:
        post_id = await ctx.db.run(checklist_post_id, checklist_id, readonly=True)
    post_id = post_id or run.overview_post_id
    return permalink(ctx, run.team_id, post_id) if post_id else ""


async def _dm(ctx: Context, user_id: str, text: str) -> None:
    try:
        await ctx.dms.send(user_id, text)
    except MattermostError as err:
        log.warning("notice DM failed user=%s status=%s id=%s", user_id, err.status, err.error_id)
        raise
