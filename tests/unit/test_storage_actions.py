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
