"""Checklist buttons: check, uncheck, skip, restore, assign to me.

A click is verified (the signature, by bot/server.py), authorised (participants and admins), applied
to one item row in one transaction, and answered with the checklist post re-rendered from the rows,
which Mattermost applies as the post's `update`. The overview's progress line follows in a coalesced
follow-up, so a burst of clicks costs one or two edits of it.
"""
from __future__ import annotations

from typing import Any

from bot.actions import CheckItem, RestoreItem, SkipItem, TakeItem, UncheckItem
from bot.context import Context
from bot.domain.permissions import Action, RunFacts, Viewer, decide
from bot.router import Click, Ephemeral, Reply, Router, UpdatePost
from handlers.views import render_checklist, schedule_overview_refresh
from storage import queries

router = Router("clicks")

VERBS: dict[type, str] = {CheckItem: "check", UncheckItem: "uncheck", SkipItem: "skip",
                          RestoreItem: "restore"}


def _facts(session: Any, run_id: str, user_id: str) -> tuple[Any, bool] | None:
    run = queries.get_run(session, run_id)
    if run is None:
        return None
    return run, queries.is_participant(session, run_id, user_id)


async def authorize(ctx: Context, run_id: str, user_id: str, action: Action = Action.WORK) -> tuple[Any, str]:
    """(run, "") when allowed, else (run or None, reason text)."""
    found = await ctx.db.run(_facts, run_id, user_id)
    if found is None:
        return None, ctx.render("errors/run_gone.md.j2")
    run, participant = found
    if participant and action is Action.WORK:
        return run, ""  # the common case costs no Mattermost call
    viewer_user = await ctx.users.get(user_id)  # type: ignore[union-attr]
    viewer = Viewer(user_id, bool(viewer_user and viewer_user.is_admin), frozenset({run.team_id}))
    facts = RunFacts(run.team_id, run.owner_id, frozenset({user_id} if participant else ()), run.private,
                     run.participants_may_finish)
    decision = decide(viewer, facts, action)
    if not decision.allowed:
        return run, ctx.render(decision.reason)
    return run, ""


def _apply_and_load(session: Any, run_id: str, item_id: str, verb: str, actor: str, now: int):
    if verb == "take":
        item, changed = queries.set_assignee(session, run_id, item_id, actor, actor, now)
    else:
        item, _, changed = queries.apply_item_verb(session, run_id, item_id, verb, actor, now)
    if item is None:
        return None
    checklist, items = queries.load_checklist(session, item.checklist_id)
    return checklist, items, checklist.position + 1, changed


async def item_click(click: Click, ctx: Context, verb: str) -> Reply:
    ref: Any = click.ref
    run, refusal = await authorize(ctx, ref.run_id, click.user_id)
    if refusal:
        return Ephemeral(refusal)
    if run.status != "in_progress":
        return Ephemeral(ctx.render("errors/run_finished.md.j2", name=run.name))
    # One lock per run: concurrent clicks on one checklist post are rendered in commit order, so a
    # later answer never carries an older picture of the list.
    async with ctx.locks(ref.run_id):
        loaded = await ctx.db.run(_apply_and_load, ref.run_id, ref.item_id, verb, click.user_id,
                                  ctx.clock.now_ms())
        if loaded is None:
            return Ephemeral(ctx.render("errors/item_gone.md.j2"))
        checklist, items, number, changed = loaded
        names = await ctx.users.names([i.assignee_id for i in items])  # type: ignore[union-attr]
        message, props = render_checklist(ctx, ref.run_id, number, checklist, items, names, ctx.clock.now_ms())
    if changed:
        schedule_overview_refresh(ctx, ref.run_id)
    return UpdatePost(message, props)


@router.click(CheckItem)
async def item_check(click: Click, ctx: Context) -> Reply:
    return await item_click(click, ctx, "check")


@router.click(UncheckItem)
async def item_uncheck(click: Click, ctx: Context) -> Reply:
    return await item_click(click, ctx, "uncheck")


@router.click(SkipItem)
async def item_skip(click: Click, ctx: Context) -> Reply:
    return await item_click(click, ctx, "skip")


@router.click(RestoreItem)
async def item_restore(click: Click, ctx: Context) -> Reply:
    return await item_click(click, ctx, "restore")


@router.click(TakeItem)
async def item_take(click: Click, ctx: Context) -> Reply:
    return await item_click(click, ctx, "take")
