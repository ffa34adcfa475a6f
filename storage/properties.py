"""A run's properties, the items they show and hide, and the items posts check by their keywords.

Items whose `when` does not hold are kept with `hidden` set (models.ChecklistItem), never deleted: a
property change re-evaluates every item of the run in the transaction that records it, so an item comes
back (with its state, assignee and place) when its condition holds again. An item someone already worked
(not open) stays shown, as in the plugin.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.domain.conditions import visible
from storage._sql import rowcount
from storage.items import apply_item_verb
from storage.models import Checklist, ChecklistItem, Run
from storage.timeline import add_timeline

PROPERTY_CHANGED = "property_changed"
ITEM_AUTO_CHECKED = "item_auto_checked"


@dataclass
class PropertyChange:
    run: Run
    before: Any
    after: Any
    changed: bool
    shown: list[str] = field(default_factory=list)  # item titles that appeared
    hidden: list[str] = field(default_factory=list)  # item titles that went out of sight
    checklist_ids: list[str] = field(default_factory=list)  # checklists whose posts change


def apply_visibility(session: Session, run_id: str, values: dict[str, Any]
                     ) -> tuple[list[ChecklistItem], list[ChecklistItem]]:
    """Set each conditional item's `hidden` from `values`; (items shown now, items hidden now)."""
    shown: list[ChecklistItem] = []
    hidden: list[ChecklistItem] = []
    for item in session.exec(select(ChecklistItem).where(ChecklistItem.run_id == run_id)):
        if not item.condition and not item.hidden:
            continue
        hide = not visible(item.condition, values, item.state)
        if hide == item.hidden:
            continue
        session.execute(update(ChecklistItem).where(col(ChecklistItem.id) == item.id).values(hidden=hide)
                        .execution_options(synchronize_session=False))
        item.hidden = hide
        (hidden if hide else shown).append(item)
    return shown, hidden


def set_property(session: Session, run_id: str, name: str, value: Any, actor_id: str, now: int
                 ) -> PropertyChange | None:
    """Set (value None: clear) one property of a run, with its `property_changed` event, and show or hide
    the items that depend on it; None when the run is not there."""
    run = session.get(Run, run_id)
    if run is None:
        return None
    values = dict(run.properties or {})
    before = values.get(name)
    if before == value:
        return PropertyChange(run, before, value, changed=False)
    if value is None:
        values.pop(name, None)
    else:
        values[name] = value
    session.execute(update(Run).where(col(Run.id) == run_id).values(properties=values)
                    .execution_options(synchronize_session=False))
    run.properties = values
    shown, hidden = apply_visibility(session, run_id, values)
    title = next((str(d.get("title") or name) for d in run.property_defs if d.get("name") == name), name)
    add_timeline(session, run_id, PROPERTY_CHANGED, now, actor_id, title,
                 {"property": name, "title": title, "from": before, "to": value,
                  "shown": [i.title for i in shown], "hidden": [i.title for i in hidden]})
    checklists = list(dict.fromkeys(i.checklist_id for i in shown + hidden))
    return PropertyChange(run, before, value, changed=True, shown=[i.title for i in shown],
                          hidden=[i.title for i in hidden], checklist_ids=checklists)


def auto_check_candidates(session: Session, channel_id: str) -> list[tuple[Run, ChecklistItem]]:
    """Open, shown items with keywords, not yet checked by them, of the runs in progress in a channel."""
    found = session.exec(
        select(ChecklistItem, Run).join(Run, col(Run.id) == ChecklistItem.run_id)
        .where(Run.channel_id == channel_id, Run.status == "in_progress",
               col(ChecklistItem.auto_checked_at).is_(None), col(ChecklistItem.hidden).is_(False),
               col(ChecklistItem.state).in_(("open", "in_progress")))
        .order_by(col(Run.created_at), col(ChecklistItem.position)))
    return [(run, item) for item, run in found if item.auto_check]


def auto_check(session: Session, run_id: str, item_id: str, actor_id: str, post_id: str, permalink: str,
               keyword: str, now: int) -> ChecklistItem | None:
    """Check an item because of a post, once: claimed by `auto_checked_at`, then the same change as the
    Check button (its `item_state_changed` event), and an `item_auto_checked` event naming the post.
    None when it was claimed before, or the item is no longer open."""
    claimed = session.execute(
        update(ChecklistItem).where(col(ChecklistItem.id) == item_id, col(ChecklistItem.run_id) == run_id,
                                    col(ChecklistItem.auto_checked_at).is_(None))
        .values(auto_checked_at=now).execution_options(synchronize_session=False))
    if rowcount(claimed) != 1:
        return None
    item, _, changed = apply_item_verb(session, run_id, item_id, "check", actor_id, now)
    if item is None or not changed:
        return None
    add_timeline(session, run_id, ITEM_AUTO_CHECKED, now, actor_id, item.title,
                 {"item_id": item_id, "title": item.title, "post_id": post_id, "permalink": permalink,
                  "keyword": keyword, "user_id": actor_id})
    return item


def checklist_ids(session: Session, run_id: str) -> list[str]:
    return list(session.exec(select(Checklist.id).where(Checklist.run_id == run_id)
                             .order_by(col(Checklist.position))))
