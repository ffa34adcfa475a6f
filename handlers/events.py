"""WebSocket events the features act on (the core handles `added_to_team` for the bot itself).

- `post_deleted` of a run's overview or checklist post: post it again, so a run never loses its
  buttons to a stray delete (the plugin's reminder broke that way, playbooks-reference §7.5).
- `post_edited` of a checklist post: bot/posts.py notes what it shows and mends it from the rows when
  it shows an older state (two concurrent clicks whose updates Mattermost applied out of order, or
  someone else's edit).
Everything else is ignored, including other people's posts.
"""
from __future__ import annotations

import json
import logging

from bot import posts
from bot.context import Context
from bot.models import MMPost, WsEvent
from bot.router import Router
from handlers.views import checklist_source, render_checklist, render_overview
from storage import runs

log = logging.getLogger(__name__)

router = Router("events")


def _bot_post(ctx: Context, event: WsEvent) -> MMPost | None:
    raw = event.data.get("post")
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(data, dict):
            return None
        post = MMPost.from_json(data)
    except (TypeError, ValueError, KeyError):
        return None
    return post if post.user_id == ctx.bot_user.id else None


@router.event("post_edited")
async def post_edited(event: WsEvent, ctx: Context) -> None:
    post = _bot_post(ctx, event)
    if post is not None:
        posts.edited(ctx, post, lambda p: checklist_source(ctx, p))


@router.event("post_deleted")
async def post_deleted(event: WsEvent, ctx: Context) -> None:
    post = _bot_post(ctx, event)
    if post is not None:
        await repost_if_run_post(ctx, post.id)


async def repost_if_run_post(ctx: Context, post_id: str) -> None:
    """Bring back a run's overview or checklist post when someone deletes it."""
    found = await ctx.db.run(runs.run_post, post_id, readonly=True)
    if found is None:
        return
    run_id, checklist_id = found
    view = await ctx.db.run(runs.load_view, run_id, readonly=True)
    if view is None:
        return
    names = await ctx.users.names([view.run.owner_id] + [i.assignee_id for _, its in view.checklists
                                                         for i in its])
    if not checklist_id:
        message, props = render_overview(ctx, view, names)
        post = await ctx.gateway.create_post(view.run.channel_id, message, props=props)
        await ctx.db.run(runs.set_overview_post, run_id, post.id)
        return
    for index, (checklist, items) in enumerate(view.checklists):
        if checklist.id == checklist_id:
            message, props = render_checklist(ctx, run_id, index + 1, checklist, items, names,
                                              ctx.clock.now_ms(), interactive=view.run.status == "in_progress")
            post = await ctx.gateway.create_post(view.run.channel_id, message, props=props)
            await ctx.db.run(runs.save_post_ids, run_id, "", {checklist_id: post.id})
