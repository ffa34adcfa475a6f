"""WebSocket events the bot acts on.

- `added_to_team` for the bot: register /playbook in that team straight away.
- `post_deleted` of a run's overview or checklist post: post it again, so a run never loses its
  buttons to a stray delete (the plugin's reminder broke that way, playbooks-reference §7.5).
- `post_edited` of a checklist post showing an older state than its rows (two concurrent clicks whose
  updates Mattermost applied out of order, or someone else's edit): render it again from the rows.
Everything else is ignored, including the bot's own posts (Mattermost sends `posted` to the author too).
"""
from __future__ import annotations

import json
import logging
from typing import Any

from bot.context import Context
from bot.models import MMPost, WsEvent
from handlers.views import STATE_PROP, checklist_state, post_lock, render_checklist
from storage import queries

log = logging.getLogger(__name__)


async def handle_event(ctx: Context, event: WsEvent, app: Any) -> None:
    if event.event == "added_to_team" and event.data.get("user_id") == ctx.bot_user.id:
        await app._on_resync()
    elif event.event in ("post_deleted", "post_edited"):
        raw = event.data.get("post")
        try:
            post = MMPost.from_json(json.loads(raw) if isinstance(raw, str) else raw)
        except (TypeError, ValueError, KeyError):
            return
        if post.user_id != ctx.bot_user.id:
            return
        if event.event == "post_deleted":
            from handlers.repost import repost_if_run_post

            await repost_if_run_post(ctx, post.id, post.channel_id)
        elif STATE_PROP in post.props:
            state = str(post.props[STATE_PROP])
            ctx.edits.seen(post.id, state)
            if state == ctx.edits.sent(post.id):
                return  # what the bot rendered last: nothing to check
            # Not awaited here: the mend takes the post's lock, whose holder may be waiting for the
            # very events this listener delivers next.
            ctx.tasks.spawn(mend_checklist_post(ctx, post), name=f"mend:{post.id}")


def _checklist_for_post(session: Any, post_id: str) -> tuple[Any, list[Any], str] | None:
    from sqlmodel import select

    from storage.models import Checklist

    checklist = session.exec(select(Checklist).where(Checklist.post_id == post_id)).first()
    if checklist is None:
        return None
    loaded = queries.load_checklist(session, checklist.id)
    run = queries.get_run(session, checklist.run_id)
    assert loaded is not None and run is not None
    return loaded[0], loaded[1], run.status


async def mend_checklist_post(ctx: Context, post: MMPost) -> None:
    found = await ctx.db.run(_checklist_for_post, post.id, readonly=True)
    if found is None:
        return
    checklist, items, status = found
    if post.props.get(STATE_PROP) == checklist_state(items, status == "in_progress"):
        return
    async with ctx.locks(post_lock(post.id)):
        # Read again under the lock: answers in flight when the event came may have caught up.
        found = await ctx.db.run(_checklist_for_post, post.id, readonly=True)
        if found is None:
            return
        checklist, items, status = found
        if ctx.edits.last(post.id) == checklist_state(items, status == "in_progress"):
            return
        log.info("checklist post was stale, rendering it again post=%s checklist=%s", post.id, checklist.id)
        names = await ctx.users.names([i.assignee_id for i in items])  # type: ignore[union-attr]
        message, props = render_checklist(ctx, checklist.run_id, checklist.position + 1, checklist, items,
                                          names, ctx.clock.now_ms(), interactive=status == "in_progress")
        ctx.edits.mark_sent(post.id, props[STATE_PROP])
        await ctx.gateway.update_post(post.id, message, props)
