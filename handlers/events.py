"""WebSocket events the features act on (the core handles `added_to_team` for the bot itself).

- `user_added` to a run's channel: the person takes part in the run and gets its welcome.
- `post_deleted` of a run's overview or checklist post: post it again (handlers/reconcile.py), so a run never loses its
  buttons to a stray delete (the plugin's reminder broke that way, playbooks-reference §7.5).
- `post_edited` of a checklist or overview post: bot/posts.py notes what it shows and mends it from the rows when
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
from handlers import notices, sidebar
from handlers.reconcile import reconcile_soon
from handlers.views import run_post_source, schedule_overview_refresh
from storage import people, runs
from storage.db import StorageError

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
        posts.edited(ctx, post, lambda p: run_post_source(ctx, p))


@router.event("user_added")
async def user_added(event: WsEvent, ctx: Context) -> None:
    """Someone was added to a run's channel (by anyone, in Mattermost): they take part in the run, as in
    the plugin, and get its welcome. Adds the bot makes itself (join, assign) find them a participant
    already, or record them here first; either way once.

    Only the run the channel was created for counts: runs started in an existing channel (a team's
    #ops, shared by several runs) do not enrol everyone who joins that channel; people join those runs
    with `/playbook join --run`, or by being assigned or invited."""
    channel_id = str(event.broadcast.get("channel_id") or "")
    user_id = str(event.data.get("user_id") or "")
    if not channel_id or not user_id or user_id == ctx.bot_user.id:
        return
    run = await ctx.db.run(runs.in_progress_run_in_channel, channel_id, readonly=True)
    if run is None:
        return
    try:
        joined = await ctx.db.run(people.add_participant, run.id, user_id, "", ctx.clock.now_ms(),
                                  "added to the channel")
    except StorageError:  # another bot process recorded them at the same moment
        log.info("participant already recorded run=%s user=%s", run.id, user_id)
        return
    if joined:
        notices.welcome(ctx, run, user_id)
        sidebar.file_joiner(ctx, run, user_id)
    schedule_overview_refresh(ctx, run.id)  # (also when join or assign recorded them first)


@router.event("post_deleted")
async def post_deleted(event: WsEvent, ctx: Context) -> None:
    post = _bot_post(ctx, event)
    if post is None:
        return
    found = await ctx.db.run(runs.run_post, post.id, readonly=True)
    if found is not None:  # a run's overview or checklist: posted again from the rows
        await reconcile_soon(ctx, found[0])
