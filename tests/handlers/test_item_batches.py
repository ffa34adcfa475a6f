"""Group commit of clicks: several participants' clicks in one transaction act exactly as one by one."""
from __future__ import annotations

from pathlib import Path

from sqlmodel import func, select

from storage.db import make_engine, migrate, session_scope
from storage.ids import new_id
from storage.items import participant_apply_many as _participant_apply_many
from storage.models import Checklist, ChecklistItem, Participant, Run, TimelineEvent


def test_a_batch_applies_in_order_and_a_repeated_click_acts_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/b.db")
    migrate(engine)
    run_id, alice, bob, outsider = new_id(), new_id(), new_id(), new_id()
    with session_scope(engine) as s:
        s.add(Run(id=run_id, name="r", playbook_id="p", team_id=new_id(), owner_id=alice, creator_id=alice,
                  created_at=1))
        s.flush()
        checklist = Checklist(id=new_id(), run_id=run_id, position=0, title="c")
        s.add(checklist)
        s.flush()
        items = [ChecklistItem(id=new_id(), run_id=run_id, checklist_id=checklist.id, position=n, title=f"i{n}")
                 for n in range(2)]
        s.add_all(items)
        s.add_all([Participant(run_id=run_id, user_id=u, joined_at=1) for u in (alice, bob)])
    a, b = items[0].id, items[1].id
    ops = [(run_id, a, "check", alice), (run_id, a, "check", bob), (run_id, b, "skip", bob),
           (run_id, b, "check", outsider), (run_id, new_id(), "check", alice)]
    with session_scope(engine) as s:
        results = _participant_apply_many(s, ops, 1000)
    assert [(r[0], r[3]) for r in results] == [("ok", True), ("ok", False), ("ok", True),
                                               ("not_participant", False), ("gone_item", False)]
    with session_scope(engine, readonly=True) as s:
        states = {i.id: i.state for i in s.exec(select(ChecklistItem))}
        events = s.exec(select(func.count()).select_from(TimelineEvent)).one()
    assert states == {a: "closed", b: "skipped"}
    assert events == 2  # one per change that happened; the repeated click recorded nothing
