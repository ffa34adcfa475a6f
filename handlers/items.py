"""Changing one checklist item, the same way from a button and from a command.

The change is one conditional UPDATE of the item's row plus its timeline event, in one transaction;
the checklist post is then rendered from the rows: a click returns that rendering as Mattermost's
`update` (bot/server.py), a command edits the post in a follow-up. Either way the overview follows,
coalesced.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.context import Context
from bot.domain.permissions import Action, RunFacts, Viewer, decide
from bot.tasks import Batcher
from handlers.views import render_checklist, schedule_overview_refresh
from storage import queries
from storage.models import ChecklistItem, Run


@dataclass(frozen=True)
class ItemChange:
    item: ChecklistItem
    changed: bool


def _facts(session: Any, run_id: str, user_id: str) -> tuple[Run, bool] | None:
    run = queries.get_run(session, run_id)
    if run is None:
        return None
    return run, queries.is_participant(session, run_id, user_id)


async def authorize(ctx: Context, run_id: str, user_id: str, action: Action = Action.WORK) -> tuple[Run | None, str]:
    """(run, "") when allowed, else (run or None, the reason to show)."""
    # Read-only: no write lock, so checks run beside concurrent clicks instead of queueing behind them.
    found = await ctx.db.run(_facts, run_id, user_id, readonly=True)
    if found is None:
        return None, ctx.render("errors/run_gone.md.j2")
    run, participant = found
    if participant and action in (Action.WORK, Action.VIEW, Action.JOIN):
        return run, ""  # the common case costs no Mattermost call
    viewer_user = await ctx.users.get(user_id)  # type: ignore[union-attr]
    viewer = Viewer(user_id, bool(viewer_user and viewer_user.is_admin), frozenset({run.team_id}))
    facts = RunFacts(run.team_id, run.owner_id, frozenset({user_id} if participant else ()), run.private,
                     run.participants_may_finish)
    decision = decide(viewer, facts, action)
    return run, "" if decision.allowed else ctx.render(decision.reason)


def _apply(session: Any, run_id: str, item_id: str, verb: str, actor: str, target: str,
           now: int) -> tuple[ChecklistItem, bool] | None:
    """One item's change and its timeline event; (item after, changed) or None when it is not there."""
    if verb == "assign":
        item, changed = queries.set_assignee(session, run_id, item_id, target, actor, now)
    else:
        item, _, changed = queries.apply_item_verb(session, run_id, item_id, verb, actor, now)
    return None if item is None else (item, changed)


def _participant_apply(session: Any, run_id: str, item_id: str, verb: str, actor: str, now: int
                       ) -> tuple[str, Run | None, ChecklistItem | None, bool]:
    """The common click in one transaction: a participant changing an item of a run in progress.

    Returns (outcome, run, item, changed); outcome "ok", "gone", "finished" or "not_participant"
    (nothing changed: the caller decides through bot.domain.permissions).
    """
    run = queries.get_run(session, run_id)
    if run is None:
        return "gone", None, None, False
    if not queries.is_participant(session, run_id, actor):
        return "not_participant", run, None, False
    if run.status != "in_progress":
        return "finished", run, None, False
    applied = _apply(session, run_id, item_id, verb, actor, actor, now)
    if applied is None:
        return "gone_item", run, None, False
    return "ok", run, applied[0], applied[1]


def _participant_apply_many(session: Any, ops: list[tuple[str, str, str, str]], now: int) -> list[Any]:
    """Several clicks in one transaction, in arrival order (a double click: the second finds the item
    already changed and does nothing)."""
    # The ops read rows (runs, participants, items) and change items with plain UPDATEs; only their
    # timeline events are pending ORM objects, so nothing needs flushing until the batch commits.
    with session.no_autoflush:
        return [_participant_apply(session, run_id, item_id, verb, actor, now)
                for run_id, item_id, verb, actor in ops]


def _click_batcher(ctx: Context) -> Batcher:
    batcher = ctx.batches.get("item_clicks")
    if batcher is None:
        async def write(ops: list[tuple[str, str, str, str]]) -> list[Any]:
            return await ctx.db.run(_participant_apply_many, ops, ctx.clock.now_ms())

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
    return outcome, run, ItemChange(item, changed)


async def change_item(ctx: Context, run_id: str, item_id: str, verb: str, actor_id: str, *,
                      assignee_id: str = "") -> ItemChange | None:
    """Apply `verb` (check, uncheck, skip, restore, assign) to one item, with its timeline event, in
    one short transaction; None when the item does not exist. The posts follow from the rows: a click
    answers with `render_latest` (bot/server.py keeps answers on one post in order), a command edits
    the post in a follow-up, and the overview refresh is coalesced.
    """
    applied = await ctx.db.run(_apply, run_id, item_id, verb, actor_id, assignee_id, ctx.clock.now_ms())
    if applied is None:
        return None
    item, changed = applied
    if changed:
        schedule_overview_refresh(ctx, run_id)
    return ItemChange(item, changed)


async def render_latest(ctx: Context, run_id: str, checklist_id: str) -> tuple[str, dict[str, Any]]:
    """The checklist post as the rows are now (read-only: runs beside writers)."""
    loaded = await ctx.db.run(queries.load_checklist, checklist_id, readonly=True)
    assert loaded is not None
    checklist, items = loaded
    names = await ctx.users.names([i.assignee_id for i in items])  # type: ignore[union-attr]
    return render_checklist(ctx, run_id, checklist.position + 1, checklist, items, names, ctx.clock.now_ms())
