"""Checklist buttons: check, uncheck, skip, restore, assign to me.

A click is verified (the signature, by bot/server.py), authorised (participants and admins), applied
by handlers.items.change_item, and answered with the re-rendered checklist as Mattermost's `update`.
"""
from __future__ import annotations

from typing import Any

from bot.actions import CheckItem, RestoreItem, SkipItem, TakeItem, UncheckItem
from bot.context import Context
from bot.router import Click, Ephemeral, Reply, Router, UpdatePost
from handlers.items import authorize, change_item, change_item_by_participant, render_latest

router = Router("clicks")


async def item_click(click: Click, ctx: Context, verb: str) -> Reply:
    ref: Any = click.ref
    # A participant's click is checked and applied in one transaction; anyone else goes the long way
    # through bot.domain.permissions (an admin may still act; others are told why not).
    outcome, run, change = await change_item_by_participant(ctx, ref.run_id, ref.item_id, verb, click.user_id)
    if outcome == "gone":
        return Ephemeral(ctx.render("errors/run_gone.md.j2"))
    if outcome == "not_participant":
        run, refusal = await authorize(ctx, ref.run_id, click.user_id)
        if refusal:
            return Ephemeral(refusal)
        assert run is not None
        if run.status == "in_progress":
            change = await change_item(ctx, ref.run_id, ref.item_id, verb, click.user_id,
                                       assignee_id=click.user_id)
            outcome = "ok" if change is not None else "gone_item"
    if outcome == "finished" or (run is not None and run.status != "in_progress"):
        assert run is not None
        return Ephemeral(ctx.render("errors/run_finished.md.j2", name=run.name))
    if change is None:
        return Ephemeral(ctx.render("errors/item_gone.md.j2"))

    async def latest() -> UpdatePost:
        message, props = await render_latest(ctx, ref.run_id, change.item.checklist_id)
        return UpdatePost(message, props)

    # Rendered when the answer is sent (bot/server.py), from the rows as they are then.
    return UpdatePost("", {}, refresh=latest)


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
    return await item_click(click, ctx, "assign")
