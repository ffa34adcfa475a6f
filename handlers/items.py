"""Changing one checklist item, the same way from a button and from a command.

The change is one conditional UPDATE of the item's row plus its timeline event, in one transaction;
the checklist post is then re-rendered from the rows. A click returns that rendering as Mattermost's
`update`; a command edits the post itself. Either way the overview's progress follows, coalesced.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.context import Context
from bot.tasks import Batcher
from bot.domain.permissions import Action, RunFacts, Viewer, decide
from handlers.views import STATE_PROP, post_lock, render_checklist, schedule_overview_refresh
from storage import queries
from storage.models import Checklist, ChecklistItem, Run


@dataclass(frozen=True)
class ItemChange:
    item: ChecklistItem
    changed: bool
    message: str
    props: dict[str, Any]
    post_id: str


# Items never move between checklists, and a checklist keeps its post unless it is reposted; both
# are remembered so that finding the post's lock costs no query.
_CHECKLIST_OF: dict[str, tuple[str, str]] = {}


def _checklist_and_post(session: Any, item_id: str) -> tuple[str, str]:
    item = session.get(ChecklistItem, item_id)
    if item is None:
        return "", ""
    checklist = session.get(Checklist, item.checklist_id)
    return item.checklist_id, checklist.post_id if checklist is not None else ""


async def checklist_of(ctx: Context, item_id: str) -> tuple[str, str]:
    """(checklist id, its post id) of an item."""
    found = _CHECKLIST_OF.get(item_id)
    if found is None:
        found = await ctx.db.run(_checklist_and_post, item_id, readonly=True)
        if found[0] and found[1]:
            if len(_CHECKLIST_OF) > 200_000:
                _CHECKLIST_OF.clear()
            _CHECKLIST_OF[item_id] = found
    return found


def forget_post(item_ids: list[str]) -> None:
    """A checklist was reposted: its items' cached post id is stale."""
    for item_id in item_ids:
        _CHECKLIST_OF.pop(item_id, None)


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


def _apply_and_load(session: Any, run_id: str, item_id: str, verb: str, actor: str, target: str,
                    now: int, load: bool = True) -> tuple[Any, ...] | None:
    if verb == "assign":
        item, changed = queries.set_assignee(session, run_id, item_id, target, actor, now)
    else:
        item, _, changed = queries.apply_item_verb(session, run_id, item_id, verb, actor, now)
    if item is None:
        return None
    if not load:
        return None, None, item, changed
    loaded = queries.load_checklist(session, item.checklist_id)
    assert loaded is not None
    checklist, items = loaded
    item = next(i for i in items if i.id == item_id)
    return checklist, items, item, changed


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
    loaded = _apply_and_load(session, run_id, item_id, verb, actor, actor, now, False)
    if loaded is None:
        return "gone_item", run, None, False
    return "ok", run, loaded[2], loaded[3]


def _participant_apply_many(session: Any, ops: list[tuple[str, str, str, str]], now: int) -> list[Any]:
    """Several clicks in one transaction, in arrival order (a double click: the second finds the item
    already changed and does nothing)."""
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
    return outcome, run, ItemChange(item, changed, "", {}, "")


async def change_item(ctx: Context, run_id: str, item_id: str, verb: str, actor_id: str, *,
                      assignee_id: str = "", edit_post: bool, render: bool = True) -> ItemChange | None:
    """Apply `verb` (check, uncheck, skip, restore, assign) and render the checklist post.

    The list is read in the same transaction that changes the item, so each rendering shows every
    change committed before it. With `edit_post` (commands) the post is edited here, under the post's
    lock; for a click, bot/server.py holds that lock while it answers with the rendering as the
    `update`. Should a post still end up stale (another bot process, someone's edit), its
    `post_edited` event mends it (handlers.events). None when the item does not exist.
    """
    checklist_id, post_id = await checklist_of(ctx, item_id)
    if not checklist_id:
        return None
    if edit_post and post_id:
        async with ctx.locks(post_lock(post_id)):
            return await _change(ctx, run_id, item_id, verb, actor_id, assignee_id, edit_post=True)
    return await _change(ctx, run_id, item_id, verb, actor_id, assignee_id, edit_post=False, render=render)


async def _change(ctx: Context, run_id: str, item_id: str, verb: str, actor_id: str, assignee_id: str, *,
                  edit_post: bool, render: bool = True) -> ItemChange | None:
    # Without `render` the write transaction is only the change and its timeline event: it holds
    # SQLite's single write lock for as short a time as possible (clicks render when they answer).
    loaded = await ctx.db.run(_apply_and_load, run_id, item_id, verb, actor_id, assignee_id,
                              ctx.clock.now_ms(), render or edit_post)
    if loaded is None:
        return None
    checklist, items, item, changed = loaded
    if checklist is None:
        if changed:
            schedule_overview_refresh(ctx, run_id)
        return ItemChange(item, changed, "", {}, "")
    names = await ctx.users.names([i.assignee_id for i in items])  # type: ignore[union-attr]
    message, props = render_checklist(ctx, run_id, checklist.position + 1, checklist, items, names,
                                      ctx.clock.now_ms())
    if edit_post and changed and checklist.post_id:
        ctx.edits.mark_sent(checklist.post_id, props[STATE_PROP])
        await ctx.gateway.update_post(checklist.post_id, message, props)
    if changed:
        schedule_overview_refresh(ctx, run_id)
    return ItemChange(item, changed, message, props, checklist.post_id)


async def render_latest(ctx: Context, run_id: str, checklist_id: str) -> tuple[str, dict[str, Any]]:
    """The checklist post as the rows are now (read-only: runs beside writers)."""
    loaded = await ctx.db.run(queries.load_checklist, checklist_id, readonly=True)
    assert loaded is not None
    checklist, items = loaded
    names = await ctx.users.names([i.assignee_id for i in items])  # type: ignore[union-attr]
    return render_checklist(ctx, run_id, checklist.position + 1, checklist, items, names, ctx.clock.now_ms())
