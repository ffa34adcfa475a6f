"""WebSocket events the bot acts on.

- `added_to_team` for the bot: register /playbook in that team straight away.
- `post_deleted` of a run's overview or checklist post: post it again, so a run never loses its
  buttons to a stray delete (the plugin's reminder broke that way, playbooks-reference §7.5).
Everything else is ignored, including the bot's own posts (Mattermost sends `posted` to the author too).
"""
from __future__ import annotations

import json
import logging
from typing import Any

from bot.context import Context
from bot.models import MMPost, WsEvent

log = logging.getLogger(__name__)


async def handle_event(ctx: Context, event: WsEvent, app: Any) -> None:
    if event.event == "added_to_team" and event.data.get("user_id") == ctx.bot_user.id:
        await app._on_resync()
    elif event.event == "post_deleted":
        raw = event.data.get("post")
        try:
            post = MMPost.from_json(json.loads(raw) if isinstance(raw, str) else raw)
        except (TypeError, ValueError, KeyError):
            return
        if post.user_id == ctx.bot_user.id:
            from handlers.repost import repost_if_run_post

            await repost_if_run_post(ctx, post.id, post.channel_id)
