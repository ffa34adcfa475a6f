"""Telling everyone who follows a run: its channel, its thread in each broadcast channel, its followers.

Each destination fails on its own: a broadcast channel the bot was removed from, or a follower who
blocked DMs, is logged and the others still get the message.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from bot.context import Context
from bot.models import MattermostError
from storage.models import Run

log = logging.getLogger(__name__)


def permalink(ctx: Context, team_id: str, post_id: str) -> str:
    """A post's permalink as Mattermost's "Copy Link" gives it: <site>/<team>/pl/<post id>."""
    team = ctx.teams.get(team_id)
    return f"{ctx.mattermost_url}/{team.name if team else team_id}/pl/{post_id}"


async def announce(ctx: Context, run: Run, *, channel_text: str | None, broadcast_text: str | None,
                   follower_text: str | None, follower_ids: list[str], skip_user: str = "",
                   channel_props: dict[str, Any] | None = None) -> str:
    """Post to the run channel, reply in each broadcast thread, DM followers; the channel post's id."""
    post_id = ""
    if channel_text is not None:
        try:
            post = await ctx.gateway.create_post(run.channel_id, channel_text, props=channel_props)
            post_id = post.id
        except MattermostError as err:
            log.warning("run channel post failed run=%s status=%s id=%s", run.id, err.status, err.error_id)
    jobs = []
    if broadcast_text is not None:
        for channel_id, root_id in (run.broadcast_threads or {}).items():
            jobs.append(_safe(ctx.gateway.create_post(channel_id, broadcast_text, root_id=root_id),
                              f"broadcast run={run.id} channel={channel_id}"))
    if follower_text is not None:
        for uid in follower_ids:
            if uid and uid != skip_user and uid != ctx.bot_user.id:
                jobs.append(_safe(ctx.dms.send(uid, follower_text), f"follower DM run={run.id} user={uid}"))
    await asyncio.gather(*jobs)
    return post_id


async def _safe(coro: Awaitable[object], what: str) -> None:
    try:
        await coro
    except MattermostError as err:
        log.warning("%s failed status=%s id=%s", what, err.status, err.error_id)
