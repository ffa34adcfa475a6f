"""Changing one checklist item, the same way from a button and from a command; and the item buttons
(Check, Uncheck, Skip, Restore, Assign to me).

The change is one conditional UPDATE of the item's row plus its timeline event, in one transaction;
the checklist post is then rendered from the rows: a click returns that rendering as Mattermost's
`update` (bot/posts.py keeps answers on one post in order), a command edits the post in a follow-up.
Either way the overview follows, coalesced. A click is verified (the signature, by bot/server.py),
authorised (participants and admins) and applied here.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.actions import CheckItem, RestoreItem, SkipItem, TakeItem, UncheckItem
from bot.context import Context
from bot.router import Click, Ephemeral, Reply, Router, UpdatePost
from bot.tasks import Batcher
from handlers.access import authorize
from handlers.views import render_checklist, schedule_overview_refresh
from storage import items
from storage.items import ClickOutcome
from storage.models import ChecklistItem, Run

router = Router("item-buttons")

ClickOp = tuple[str, str, str, str]  # run id, item id, verb, actor id
ITEM_BUTTONS = (CheckItem, UncheckItem, SkipItem, RestoreItem, TakeItem)


@dataclass(frozen=True)
class ItemChange:
    item: ChecklistItem
    changed: bool


def _click_batcher(ctx: Context) -> Batcher[ClickOp, ClickOutcome]:
    batcher = ctx.batches.get("item_clicks")
    if batcher is None:
        async def write(ops: list[ClickOp]) -> list[ClickOutcome | Exception]:
            return list(await ctx.db.run(items.participant_apply_many, ops, ctx.clock.now_ms()))

        batcher = ctx.batches["item_clicks"] = Batcher(write, ctx.tasks, name="item-clicks")
    return batcher


async def change_item_by_participant(ctx: Context, run_id: str, item_id: str, verb: str, actor_id: str
                                     ) -> tuple[str, Run | None, ItemChange | None]:
    """The permission check and the change in one transaction, when the actor takes part in the run
    (the common case); otherwise nothing is changed and the outcome says why. Concurrent clicks share
    transactions (group commit, bot.tasks.Batcher)."""
    outcome, run, item, changed = await _click_batcher(ctx).submit((run_id, item_id, verb, actor_id))
    if outcome != "ok" or item is None:
        return outcome, run, None
    if changed:
        schedule_overview_refresh(ctx, run_id)
        await _checked(ctx, run_id, item, verb, actor_id)
    return outcome, run, ItemChange(item, changed)


async def change_item(ctx: Context, run_id: str, item_id: str, verb: str, actor_id: str, *,
                      assignee_id: str = "") -> ItemChange | None:
    """Apply `verb` (check, uncheck, skip, restore, assign) to one item, with its timeline event, in
    one short transaction; None when the item does not exist. The posts follow from the rows: a click
    answers with `render_latest`, a command edits the post in a follow-up, and the overview refresh is
    coalesced.
    """
    applied = await ctx.db.run(items.apply_change, run_id, item_id, verb, actor_id, assignee_id,
                               ctx.clock.now_ms())
    if applied is None:
        return None
    item, changed = applied
    if changed:
        schedule_overview_refresh(ctx, run_id)
        await _checked(ctx, run_id, item, verb, actor_id)
    return ItemChange(item, changed)


async def _checked(ctx: Context, run_id: str, item: ChecklistItem, verb: str, actor_id: str) -> None:
    """An item just checked is a run event (the playbook's [[actions]] on = "item_checked")."""
    if verb == "check":
        await ctx.emit("item_checked", run_id, actor_id=actor_id, payload={"item_id": item.id, "title": item.title})


async def render_latest(ctx: Context, run_id: str, checklist_id: str) -> tuple[str, dict[str, object]]:
    """The checklist post as the rows are now (read-only: runs beside writers)."""
    loaded = await ctx.db.run(items.load_checklist, checklist_id, readonly=True)
    assert loaded is not None
    checklist, rows = loaded
    names = await ctx.users.names([i.assignee_id for i in rows])
    return render_checklist(ctx, run_id, checklist.position + 1, checklist, rows, names, ctx.clock.now_ms())


# --- the item buttons -------------------------------------------------------------------------------

async def item_click(click: Click, ctx: Context, verb: str) -> Reply:
    ref = click.ref
    assert isinstance(ref, ITEM_BUTTONS)
    # A participant's click is checked and applied in one transaction; anyone else goes the long way
    # through bot.domain.permissions (an admin may still act; others are told why not).
    outcome, run, change = await change_item_by_participant(ctx, ref.run_id, ref.item_id, verb, click.user_id)
    if outcome == "gone":
        return Ephemeral(ctx.render("errors/run_gone.md.j2"))
    if outcome == "starting":
        assert run is not None
        return Ephemeral(ctx.render("errors/run_starting.md.j2", name=run.name))
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
    checklist_id = change.item.checklist_id

    async def latest() -> UpdatePost:
        message, props = await render_latest(ctx, ref.run_id, checklist_id)
        return UpdatePost(message, props)

    # Rendered when the answer is sent (bot/posts.py answer_click), from the rows as they are then.
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
