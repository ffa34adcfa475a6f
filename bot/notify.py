"""Telling one person something, and the tracked follow-up that tells them when slow work failed.

A slash command's `response_url` reaches the person ephemerally with no special permission (30 min,
5 uses). Otherwise an ephemeral post needs `create_post_ephemeral`, which plain bots lack (403); then
the bot falls back to a direct message, so the person still hears about it.

`follow_up` is the one way features run work after answering Mattermost: a tracked task (shutdown and
tests wait for it) whose failure is logged and told to the person who asked, in words they can act on.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from bot.models import Gateway, MattermostError

if TYPE_CHECKING:
    from bot.context import Context

log = logging.getLogger(__name__)


class DirectChannels:
    """The bot's DM channel with each person, remembered: a reminder must not cost two calls per follower."""

    def __init__(self, gateway: Gateway, bot_user_id: str) -> None:
        self.gateway = gateway
        self.bot_user_id = bot_user_id
        self._ids: dict[str, str] = {}

    async def channel_id(self, user_id: str) -> str:
        channel_id = self._ids.get(user_id)
        if channel_id is None:
            channel = await self.gateway.direct_channel(self.bot_user_id, user_id)
            channel_id = self._ids[user_id] = channel.id
        return channel_id

    async def send(self, user_id: str, text: str, props: dict[str, Any] | None = None) -> None:
        await self.gateway.create_post(await self.channel_id(user_id), text, props=props)


async def notify(ctx: Context, user_id: str, channel_id: str, text: str, *, response_url: str = "") -> None:
    """Tell `user_id` privately: by `response_url`, else an ephemeral post, else a direct message."""
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
        await ctx.dms.send(user_id, text)
    except MattermostError:
        log.exception("could not reach user=%s", user_id)


def follow_up(ctx: Context, work: Coroutine[Any, Any, Any], *, name: str, user_id: str, channel_id: str,
              response_url: str = "", failure: Callable[[], str] | None = None) -> None:
    """Run `work` after the answer, tracked; if it fails, tell the person (`failure()` renders what to
    say; by default that something went wrong and nothing more was done)."""

    async def report(exc: BaseException) -> None:
        text = failure() if failure is not None else ctx.render("errors/internal.md.j2")
        await notify(ctx, user_id, channel_id, text, response_url=response_url)

    ctx.tasks.spawn(work, name=name, on_error=report)
