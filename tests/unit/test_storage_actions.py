"""storage/actions.py on SQLite and PostgreSQL: what a jira.comment or jira.transition finds of the run's issue."""
from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from storage import actions as store
from storage.db import session_scope
from storage.ids import new_id
from storage.models import Run, RunAction, RunLink

pytest_plugins = ["tests.pg"]

NOW = 1_767_225_600_000
ME = "host|1"


def add_run(engine: Engine) -> str:
    run = Run(id=new_id(), name="Checkout is down", playbook_id="incident", playbook_title="Incident response",
              team_id=new_id(), owner_id=new_id(), creator_id=new_id(), created_at=NOW)
    with session_scope(engine) as session:
        session.add(run)
    return run.id


def add_create(engine: Engine, run_id: str, index: int = 1) -> str:
    row = RunAction(id=new_id(), run_id=run_id, action_index=index, event_key="start", event="run_started",
                    kind="jira.create_issue", created_at=NOW, state="running", lease_owner=ME,
                    lease_until=NOW + 60_000)
    with session_scope(engine) as session:
        session.add(row)
    return row.id


def settle_with_link(engine: Engine, action_id: str, run_id: str) -> None:
    link = RunLink(action_id=action_id, run_id=run_id, kind="jira", label="OPS-1", key="OPS-1",
                   url="https://acme.atlassian.net/browse/OPS-1", at=NOW)
    with session_scope(engine) as session:
        assert store.settle(session, action_id, ME, NOW, True, {"key": "OPS-1"}, "", "", "Jira issue OPS-1", {},
                            link=link)


def read(engine: Engine, run_id: str) -> tuple[RunLink | None, bool]:
    with session_scope(engine, readonly=True) as session:  # as handlers/actions.py reads it
        link, creating = store.jira_issue_or_creating(session, run_id)
        return (None if link is None else RunLink.model_validate(link.model_dump())), creating


def test_the_issue_the_create_still_on_and_neither(db_engine: Engine) -> None:
    run_id = add_run(db_engine)
    assert read(db_engine, run_id) == (None, False)
    action_id = add_create(db_engine, run_id)
    assert read(db_engine, run_id) == (None, True)
    settle_with_link(db_engine, action_id, run_id)
    link, creating = read(db_engine, run_id)
    assert link is not None and link.label == "OPS-1" and creating is False


def test_a_create_settling_between_the_reads_is_seen_as_one_or_the_other(db_engine: Engine) -> None:
    """The create commits its link and its final state after the reader's first statement and before its
    second: the reader must see the issue or a create still on, never neither (which would fail the comment
    for good while the issue was being made)."""
    run_id = add_run(db_engine)
    action_id = add_create(db_engine, run_id)
    reads: list[str] = []

    def between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and ("run_actions" in statement or "run_links" in statement):
            reads.append(statement)
            if len(reads) == 1:  # on another connection, committed before the reader's next statement
                settle_with_link(db_engine, action_id, run_id)

    event.listen(db_engine, "after_cursor_execute", between)
    try:
        with session_scope(db_engine, readonly=True) as session:
            link, creating = store.jira_issue_or_creating(session, run_id)
            assert link is not None or creating, "neither the issue nor a create still on"
    finally:
        event.remove(db_engine, "after_cursor_execute", between)
    assert len(reads) >= 2


def test_of_several_create_rows_only_the_first_goes_ahead(db_engine: Engine) -> None:
    run_id = add_run(db_engine)
    first, second = add_create(db_engine, run_id, 1), add_create(db_engine, run_id, 2)
    with session_scope(db_engine, readonly=True) as session:
        rows = {r.id: r for r in store.run_actions(session, run_id)}
        assert store.jira_issue_or_creating(session, run_id, rows[first]) == (None, False)
        assert store.jira_issue_or_creating(session, run_id, rows[second]) == (None, True)
    settle_with_link(db_engine, first, run_id)
    link, creating = read(db_engine, run_id)
    assert link is not None and link.key == "OPS-1" and not creating


def test_unrecorded_events_come_from_the_timeline_and_leave_out_recorded_ones(db_engine: Engine) -> None:
    from storage import reminders, runs
    from storage.items import apply_item_verb
    from storage.models import Checklist, ChecklistItem

    owner, helper = new_id(), new_id()
    with session_scope(db_engine) as session:
        run = Run(id=new_id(), name="Checkout is down", playbook_id="incident", playbook_title="Incident",
                  team_id=new_id(), owner_id=owner, creator_id=owner, created_at=NOW, playbook_version_id=new_id())
        old = Run(id=new_id(), name="Before versions", playbook_id="incident", team_id=run.team_id,
                  owner_id=owner, creator_id=owner, created_at=NOW)
        session.add_all([run, old])
        session.flush()
        checklist = Checklist(id=new_id(), run_id=run.id, position=0, title="Triage")
        session.add(checklist)
        session.flush()
        a, b, c = (ChecklistItem(id=new_id(), run_id=run.id, checklist_id=checklist.id, position=n, title=t)
                   for n, t in enumerate(["Page", "Escalate", "Skip me"]))
        session.add_all([a, b, c])
        session.flush()
        apply_item_verb(session, run.id, a.id, "check", helper, NOW + 1000)
        apply_item_verb(session, run.id, a.id, "uncheck", helper, NOW + 2000)
        apply_item_verb(session, run.id, a.id, "check", owner, NOW + 3000)  # the same event (its key) again
        apply_item_verb(session, run.id, b.id, "check", helper, NOW + 4000)
        apply_item_verb(session, run.id, c.id, "skip", helper, NOW + 5000)  # not a check
        update = reminders.record_update(session, run.id, owner, "**Impact:** all checkouts", NOW + 6000, 900)
        assert update is not None
        assert runs.finish(session, run.id, helper, NOW + 7000, None, 0) is not None
        old_update = reminders.record_update(session, old.id, owner, "not versioned", NOW + 6000, 0)
        assert old_update is not None
        # b's check was recorded by its process (one row of the event is enough).
        session.add(RunAction(id=new_id(), run_id=run.id, action_index=2, event_key=b.id, event="item_checked",
                              kind="http", created_at=NOW + 4000))
    with session_scope(db_engine, readonly=True) as session:
        assert store.runs_with_events(session, NOW, NOW + 10_000) == [(run.id, run.playbook_version_id)]
        found = store.unrecorded_events(session, [run.id], NOW, NOW + 10_000)
        late = store.unrecorded_events(session, [run.id], NOW + 6500, NOW + 10_000)
    assert [(e.event, e.key, e.actor_id, e.payload) for e in found] == [
        ("item_checked", a.id, helper, {"item_id": a.id, "title": "Page"}),
        ("status_updated", update.id, owner, {"message": "**Impact:** all checkouts", "reminder_s": 900,
                                              "update_id": update.id}),
        ("run_finished", f"finish:{NOW + 7000}", helper, {}),
    ]
    assert [e.event for e in late] == ["run_finished"]  # only what is inside the window
