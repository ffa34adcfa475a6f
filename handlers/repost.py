"""Bring back a run's overview or checklist post when someone deletes it."""
from __future__ import annotations

from typing import Any

from sqlmodel import select

from bot.context import Context
from handlers.views import render_checklist, render_overview
from storage import queries
from storage.models import Checklist, Run


def _find(session: Any, post_id: str, channel_id: str) -> tuple[str, str] | None:
    run = session.exec(select(Run).where(Run.overview_post_id == post_id)).first()
    if run is not None:
        return run.id, ""
    checklist = session.exec(select(Checklist).where(Checklist.post_id == post_id)).first()
    if checklist is not None:
        return checklist.run_id, checklist.id
    return None


async def repost_if_run_post(ctx: Context, post_id: str, channel_id: str) -> None:
    found = await ctx.db.run(_find, post_id, channel_id, readonly=True)
    if found is None:
        return
    run_id, checklist_id = found
    view = await ctx.db.run(queries.load_view, run_id, readonly=True)
    if view is None:
        return
    names = await ctx.users.names([view.run.owner_id] + [i.assignee_id for _, its in view.checklists  # type: ignore[union-attr]
                                                         for i in its])
    if not checklist_id:
        message, props = render_overview(ctx, view, names)
        post = await ctx.gateway.create_post(view.run.channel_id, message, props=props)
        await ctx.db.run(lambda s: queries.set_run_fields(s, run_id, overview_post_id=post.id))
        return
    for index, (checklist, items) in enumerate(view.checklists):
        if checklist.id == checklist_id:
            message, props = render_checklist(ctx, run_id, index + 1, checklist, items, names,
                                              ctx.clock.now_ms(), interactive=view.run.status == "in_progress")
            post = await ctx.gateway.create_post(view.run.channel_id, message, props=props)
            await ctx.db.run(queries.set_checklist_post, checklist_id, post.id)
