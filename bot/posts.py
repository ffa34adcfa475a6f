"""Posts show the stored state: the one place that keeps every bot post that renders rows in step with them.

Every writer of such a post (a click's answer, a command's edit, the mend of a stale post) renders from
the rows at the moment it writes, under the post's lock (`post_lock`), and records what it rendered
(`EditWatch`). Mattermost's `post_edited` events say what the post shows now; one showing an older
state than the bot last rendered (two answers applied out of order, or someone else's edit) is mended
from the rows. Features say *what* a post looks like (handlers/views.py); this module says *when* it
may be written and makes sure the last write wins.

Checklist posts carry a digest of what they show in their props (`STATE_PROP`), so an event tells which
state the post is in without comparing texts. A post's `message` is fixed when it is first posted (its
number and title, the run's name); every write here changes only its props, which Mattermost accepts
past any ServiceSettings.PostEditTimeLimit (a patch naming `message` is refused then, api4/post.go).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.models import MMPost
from bot.router import Ephemeral, NoReply, Reply, UpdatePost

if TYPE_CHECKING:
    from bot.context import Context

log = logging.getLogger(__name__)

# Props key holding a digest of what a post shows: a `post_edited` carrying another digest than the bot
# last rendered means Mattermost shows something else than the rows (mended below).
STATE_PROP = "playbooks_state"
# How long the next click on a post waits to see the previous click's update applied.
APPLIED_TIMEOUT_S = 1.0


def post_lock(post_id: str) -> str:
    """The lock key of everything that writes one post (click answers, command edits, mends)."""
    return f"post:{post_id}"


@dataclass(frozen=True)
class Rendering:
    message: str
    props: dict[str, Any]

    @property
    def state(self) -> str:
        return str(self.props.get(STATE_PROP, ""))


@dataclass(frozen=True)
class Source:
    """What a post should show, per its rows: the state digest (cheap) and how to render it."""

    state: str
    render: Callable[[], Awaitable[Rendering]]


class EditWatch:
    """What Mattermost last showed of each bot post, learned from `post_edited` events.

    A click's answer carries the post's new rendering as an `update`, which Mattermost applies when it
    reads the answer. Concurrent answers for one post can be applied out of order (the server handles
    each click on its own), so the bot sends the next answer for a post only once the previous one was
    seen applied, or after `timeout` (WebSocket down: slower, never stuck).
    """

    def __init__(self) -> None:
        self._last: dict[str, str] = {}
        self._sent: dict[str, str] = {}
        self._waiting: dict[str, tuple[str, asyncio.Future[None]]] = {}

    def mark_sent(self, post_id: str, state: str) -> None:
        """The bot just rendered `state` into the post (an answer's update, or its own edit)."""
        if len(self._sent) > 100_000:
            self._sent.clear()
        self._sent[post_id] = state

    def sent(self, post_id: str) -> str | None:
        return self._sent.get(post_id)

    def expect(self, post_id: str, state: str) -> None:
        self.mark_sent(post_id, state)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[post_id] = (state, future)

    def seen(self, post_id: str, state: str) -> None:
        if len(self._last) > 100_000:
            self._last.clear()
        self._last[post_id] = state
        waiting = self._waiting.get(post_id)
        if waiting is not None and waiting[0] == state and not waiting[1].done():
            waiting[1].set_result(None)

    def last(self, post_id: str) -> str | None:
        return self._last.get(post_id)

    async def wait(self, post_id: str, timeout: float) -> bool:
        """True when the expected state was seen; False on timeout."""
        waiting = self._waiting.get(post_id)
        if waiting is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(waiting[1]), timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            if self._waiting.get(post_id) is waiting:
                del self._waiting[post_id]


async def answer_click(ctx: Context, post_id: str, reply: UpdatePost, send: Callable[[Reply], Awaitable[None]],
                       *, wait_applied: bool) -> None:
    """Send a click's answer that carries its post's new rendering, in order with the other writers.

    Answers for one post go one at a time, each only once Mattermost has applied the previous one
    (seen as its post_edited event; `wait_applied` is False without a WebSocket, when none can come):
    the server applies concurrent answers in no fixed order, and an older rendering must never win. An
    answer that waited renders the latest rows; if Mattermost already shows exactly that, it carries no
    update.
    """
    assert reply.refresh is not None
    async with ctx.locks(post_lock(post_id)):
        try:
            reply = await reply.refresh()
        except Exception:
            # The click itself is stored; only its picture failed. Say so; the post catches up on the
            # next click or edit (the change is already in the rows and on the timeline).
            log.exception("rendering a click's answer failed post=%s", post_id)
            await send(Ephemeral(ctx.render("errors/render_failed.md.j2")))
            return
        state = str(reply.props[STATE_PROP])
        if state == ctx.edits.last(post_id):
            await send(Ephemeral(reply.ephemeral_text) if reply.ephemeral_text else NoReply())
            return
        ctx.edits.expect(post_id, state)
        await send(reply)
        if wait_applied and not await ctx.edits.wait(post_id, APPLIED_TIMEOUT_S):
            log.info("no post_edited seen for a click's update post=%s", post_id)


async def rewrite(ctx: Context, post_id: str, load: Callable[[], Awaitable[Rendering | None]]) -> None:
    """Edit a post to show its rows: read and rendered under the post's lock, like every writer of the
    post, so a click answered meanwhile is never overtaken by an older picture; marked as sent so the
    mend (below) knows the rendering is the bot's. `load` returns None when the post shows nothing now."""
    async with ctx.locks(post_lock(post_id)):
        rendering = await load()
        if rendering is None:
            return
        ctx.edits.mark_sent(post_id, rendering.state)
        await ctx.gateway.update_post(post_id, None, rendering.props)


async def show(ctx: Context, post_id: str, rendering: Rendering) -> bool:
    """Make a post (the overview) show `rendering`, under its lock;
    no call to Mattermost when the bot's last write already showed exactly that. True when it wrote."""
    digest = rendering.state or hashlib.sha256(json.dumps([rendering.message, rendering.props],
                                                          sort_keys=True).encode()).hexdigest()[:16]
    async with ctx.locks(post_lock(post_id)):
        if ctx.edits.sent(post_id) == digest:
            return False
        await ctx.gateway.update_post(post_id, None, rendering.props)
        ctx.edits.mark_sent(post_id, digest)
        return True


def edited(ctx: Context, post: MMPost, source: Callable[[MMPost], Awaitable[Source | None]]) -> None:
    """A `post_edited` of one of the bot's posts: note what it shows and, when that is not what the bot
    rendered last, mend it from `source` (the rows) in a follow-up."""
    if STATE_PROP not in post.props:
        return
    state = str(post.props[STATE_PROP])
    ctx.edits.seen(post.id, state)
    if state == ctx.edits.sent(post.id):
        return  # what the bot rendered last: nothing to check
    # Not awaited here: the mend takes the post's lock, whose holder may be waiting for the very
    # events the WebSocket listener delivers next.
    ctx.tasks.spawn(mend(ctx, post, source), name=f"mend:{post.id}")


async def mend(ctx: Context, post: MMPost, source: Callable[[MMPost], Awaitable[Source | None]]) -> None:
    """Bring a post that shows another state than its rows back to the rows."""
    found = await source(post)
    if found is None or post.props.get(STATE_PROP) == found.state:
        return
    async with ctx.locks(post_lock(post.id)):
        # Read again under the lock: answers in flight when the event came may have caught up.
        found = await source(post)
        if found is None or ctx.edits.last(post.id) == found.state:
            return
        log.info("post was stale, rendering it again from the rows post=%s", post.id)
        rendering = await found.render()
        ctx.edits.mark_sent(post.id, rendering.state)
        await ctx.gateway.update_post(post.id, None, rendering.props)
