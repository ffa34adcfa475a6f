"""Telling one person something privately, by the best channel the bot has.

A slash command's `response_url` reaches the person ephemerally with no special permission (30 min,
5 uses). Otherwise an ephemeral post needs `create_post_ephemeral`, which plain bots lack (403); then
the bot falls back to a direct message, so the person still hears about it.
"""
from __future__ import annotations

import logging

from bot.context import Context
from bot.models import MattermostError

log = logging.getLogger(__name__)


async def notify(ctx: Context, user_id: str, channel_id: str, text: str, *, response_url: str = "") -> None:
    if response_url:
        try:
            await ctx.gateway.respond(response_url, text)
            return
        except MattermostError as err:
            log.info("response_url failed, falling back status=%s id=%s", err.status, err.error_id)
    try:
        await ctx.gateway.send_ephemeral(user_id, channel_id, text)
        return
    except MattermostError as err:
        if err.status not in (401, 403):
            log.warning("ephemeral failed status=%s id=%s", err.status, err.error_id)
    try:
        await direct_message(ctx, user_id, text)
    except MattermostError:
        log.exception("could not reach user=%s", user_id)


async def direct_message(ctx: Context, user_id: str, text: str) -> None:
    channel = await ctx.gateway.direct_channel(ctx.bot_user.id, user_id)
    await ctx.gateway.create_post(channel.id, text)
