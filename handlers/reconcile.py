"""Reconciliation: every run's posts are compared with its rows and mended, so what people see is what is
stored even after a crash, a lost WebSocket event or a post someone deleted.

Each overview and checklist post carries a digest of what it shows (`bot.posts.STATE_PROP`) and which
part of which run it is (`handlers.views.PART_PROP`). A sweep reads each post back from Mattermost and,
where the digest differs from the rows', edits it from the rows; a post that is gone is posted again; a
post whose text (not only its attachments) must change and that Mattermost refuses to edit (older than
ServiceSettings.PostEditTimeLimit: api.post.update_post.permissions_time_limit.app_error, api4/post.go)
is posted anew and the old one says where it went.

A sweep runs at start-up (a crash leaves posts behind their rows: clicks stored but not yet shown), after
a WebSocket resync (events were missed), every SWEEP_S seconds, and for one run when one of its posts is
deleted. One bot process sweeps a run at a time (`storage.runs.claim_sweep`, a claim that runs out), so
two processes never post a lost post twice; a post made but not recorded before a crash is found again
by its part marker among the channel's latest posts.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from bot import posts
from bot.context import Context
from bot.models import MattermostError, MMPost
from bot.router import Router
from bot.scheduler import Wakeup
from handlers.announce import permalink
from handlers.views import (
    PART_PROP,
    RUN_PROP,
    checklist_rendering,
    overview_names,
    part_marker,
    render_overview,
)
from storage import runs

log = logging.getLogger(__name__)

router = Router("reconcile")

SWEEP_S = 300.0  # every few minutes, besides start-up and resyncs
CLAIM_MS = 120_000  # a sweeper that died frees its runs after this long
RECENT_MS = 24 * 3_600_000  # finished runs are swept this long after finishing (their buttons must go)
ADOPT_WINDOW = 60  # a post made but not recorded is looked for among the channel's latest posts
TIME_LIMIT = "api.post.update_post.permissions_time_limit.app_error"
SHOW_ATTEMPTS, SHOW_WAIT_S = 20, 0.25  # how long a change waits for another process's claim on its run
HOLDER = secrets.token_hex(8)  # this process, as the holder of sweep claims

Render = Callable[[], Awaitable[posts.Rendering | None]]


class Reconciler:
    """The sweep as a job: at start-up, on demand (`soon`) and every `poll_s` seconds."""

    def __init__(self, ctx: Context, *, poll_s: float = SWEEP_S) -> None:
        self.ctx = ctx
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=poll_s)
        self._lock = asyncio.Lock()
        self.swept = 0  # sweeps finished (tests and the log read it)

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        self.soon("start-up")

    async def stop(self) -> None:
        self.wakeup.stop()
        async with self._lock:
            pass

    def soon(self, why: str) -> None:
        self.ctx.tasks.spawn(self.sweep(why), name=f"reconcile:{why}")

    async def _on_wake(self) -> None:
        self.soon("periodic")

    async def sweep(self, why: str = "") -> int:
        """Compare every recent run's posts with its rows; how many posts were mended."""
        mended = 0
        async with self._lock:
            since = self.ctx.clock.now_ms() - RECENT_MS
            for run_id in await self.ctx.db.run(runs.runs_to_sweep, since, readonly=True):
                try:
                    mended += await reconcile_run(self.ctx, run_id) or 0
                except Exception:
                    log.exception("reconciling a run's posts failed run=%s", run_id)
            self.swept += 1
        if mended:
            log.info("posts mended from the rows: %d (%s)", mended, why)
        return mended


async def reconcile_run(ctx: Context, run_id: str) -> int | None:
    """Bring one run's overview and checklist posts in line with its rows; how many posts changed.
    None when another process is at it (it will do the same)."""
    now = ctx.clock.now_ms()
    if not await ctx.db.run(runs.claim_sweep, run_id, HOLDER, now, CLAIM_MS):
        return None
    try:
        view = await ctx.db.run(runs.load_view, run_id, readonly=True)
        # A run still starting has its posts made by the start; a failed one has none to keep (a rollback
        # in an existing channel deletes them, and their post_deleted events must not bring them back).
        if view is None or not view.run.channel_id or view.run.status in ("starting", "failed"):
            return 0
        changed = 0
        if await _check(ctx, view.run.id, view.run.channel_id, view.run.team_id, "", view.run.overview_post_id,
                        lambda: _overview(ctx, run_id)):
            changed += 1
        for checklist, _ in view.checklists:
            async def render(checklist_id: str = checklist.id) -> posts.Rendering | None:
                return await checklist_rendering(ctx, checklist_id)  # its rows, read under the post's lock

            if await _check(ctx, view.run.id, view.run.channel_id, view.run.team_id, checklist.id,
                            checklist.post_id, render):
                changed += 1
        return changed
    finally:
        await ctx.db.run(runs.release_sweep, run_id, HOLDER)


async def _overview(ctx: Context, run_id: str) -> posts.Rendering | None:
    view = await ctx.db.run(runs.load_overview, run_id, readonly=True)
    if view is None:
        return None
    names = await ctx.users.names(overview_names(view))
    return posts.Rendering(*render_overview(ctx, view, names))


async def _check(ctx: Context, run_id: str, channel_id: str, team_id: str, checklist_id: str, post_id: str,
                 render: Render) -> bool:
    """One part of a run: its post read back and mended, or posted again. True when it changed."""
    if not post_id:
        return await _repost(ctx, run_id, channel_id, team_id, checklist_id, "", render)
    async with ctx.locks(posts.post_lock(post_id)):
        # Read and rendered under the post's lock, like every writer of it: a click answered meanwhile
        # is never overtaken by an older picture.
        post = await _read(ctx, post_id)
        if post is not None:
            rendering = await render()
            if rendering is None:
                return False
            ctx.edits.seen(post.id, str(post.props.get(posts.STATE_PROP, "")))
            if post.props.get(posts.STATE_PROP) == rendering.state and post.message == rendering.message:
                return False
            log.info("post behind its rows, mending it run=%s post=%s", run_id, post.id)
            ctx.edits.mark_sent(post.id, rendering.state)
            if post.message == rendering.message:
                await ctx.gateway.update_post(post.id, None, rendering.props)
                return True
            try:
                await ctx.gateway.update_post(post.id, rendering.message, rendering.props)
                return True
            except MattermostError as err:
                if err.error_id != TIME_LIMIT:
                    raise
                log.info("Mattermost no longer lets the bot edit this post's text; posting it anew post=%s",
                         post.id)
    return await _repost(ctx, run_id, channel_id, team_id, checklist_id, post_id, render,
                         moved=post is not None)


async def _read(ctx: Context, post_id: str) -> MMPost | None:
    """The post as Mattermost has it; None when it is gone (deleted posts answer 404)."""
    try:
        return await ctx.gateway.get_post(post_id)
    except MattermostError as err:
        if err.status in (403, 404):
            return None
        raise


async def _repost(ctx: Context, run_id: str, channel_id: str, team_id: str, checklist_id: str, old_post_id: str,
                  render: Render, moved: bool = False) -> bool:
    """Post a part again (it was deleted, never recorded, or cannot be edited any more) and record it."""
    rendering = await render()
    if rendering is None:
        return False
    marker = part_marker(checklist_id)
    recent = await ctx.gateway.get_channel_posts(channel_id, ADOPT_WINDOW)
    found = next((p for p in recent if p.user_id == ctx.bot_user.id and p.id != old_post_id
                  and p.props.get(RUN_PROP) == run_id and p.props.get(PART_PROP) == marker
                  and p.message == rendering.message), None)
    if found is not None:  # made by a start or a sweep that crashed before recording it
        log.info("found a run post that was never recorded run=%s post=%s", run_id, found.id)
        new = found
        if found.props.get(posts.STATE_PROP) != rendering.state:
            ctx.edits.mark_sent(found.id, rendering.state)
            await ctx.gateway.update_post(found.id, None, rendering.props)
    else:
        new = await ctx.gateway.create_post(channel_id, rendering.message, props=rendering.props)
        ctx.edits.mark_sent(new.id, rendering.state)
    if not await ctx.db.run(runs.replace_run_post, run_id, checklist_id, old_post_id, new.id):
        log.warning("a run post was replaced meanwhile run=%s part=%s", run_id, marker)
        return False
    if moved:
        text = ctx.render("run/post_moved.md.j2", link=permalink(ctx, team_id, new.id))
        try:
            await ctx.gateway.update_post(old_post_id, None, {"attachments": [{"fallback": text, "text": text}]})
        except MattermostError as err:
            log.warning("could not point the old post at the new one post=%s id=%s", old_post_id, err.error_id)
    return True


async def show_run(ctx: Context, run_id: str) -> None:
    """Make the run's posts show a change just stored (a rename, a new checklist): as the sweep does,
    waiting a moment for another process that holds the run's claim (it may have read the rows before
    the change) rather than leaving it to the next sweep."""
    for _ in range(SHOW_ATTEMPTS):
        if await reconcile_run(ctx, run_id) is not None:
            return
        await asyncio.sleep(SHOW_WAIT_S)
    log.warning("another process kept the run's posts busy; the next sweep shows the change run=%s", run_id)


def sweep_soon(ctx: Context, why: str) -> None:
    """Ask for a sweep now (a resync: events may have been missed)."""
    job = ctx.jobs.get("reconcile")
    if isinstance(job, Reconciler):
        job.soon(why)


async def reconcile_soon(ctx: Context, run_id: str) -> None:
    """One run's posts, now (one of them was deleted)."""
    try:
        await reconcile_run(ctx, run_id)
    except MattermostError as err:
        log.warning("mending a run's posts failed run=%s status=%s id=%s", run_id, err.status, err.error_id)


router.job("reconcile", Reconciler)


@router.on_resync
async def _resynced(ctx: Context) -> None:
    sweep_soon(ctx, "resync")
