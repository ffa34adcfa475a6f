"""Run properties in the web view's queries, on SQLite and PostgreSQL: the runs list filtered by a
property's value (a select's value, a multiselect's member, never a substring), the filter's choices from
the visible runs' definitions, and insights' runs by property."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from bot.domain import insights as calc
from bot.domain.permissions import Viewer
from storage import insights, web_runs
from storage.db import session_scope
from storage.ids import new_id
from storage.models import Run
from storage.web_runs import RunFilter

pytest_plugins = ["tests.pg"]

NOW = 1_767_225_600_000
DEFS = [{"name": "severity", "title": "Severity", "type": "select", "options": ["sev1", "sev2"]},
        {"name": "services", "title": "Services", "type": "multiselect", "options": ["api", "db", "dbx"]},
        {"name": "note", "title": "Note", "type": "text", "options": []}]


def _seed(engine: Engine, team: str) -> dict[str, str]:
    ids = {}
    with session_scope(engine) as s:
        for key, props, private in [("a", {"severity": "sev1", "services": ["api", "db"]}, False),
                                    ("b", {"severity": "sev2", "services": ["dbx"], "note": "db"}, False),
                                    ("c", {}, False),
                                    ("hidden", {"severity": "sev1", "services": ["db"]}, True)]:
            run = Run(id=new_id(), name=key, playbook_id="incident", playbook_title="Incident", team_id=team,
                      private=private, owner_id="dave" if private else "bob", creator_id="bob",
                      status="finished" if key == "b" else "in_progress", created_at=NOW,
                      finished_at=NOW + 1000 if key == "b" else None, property_defs=DEFS, properties=props)
            s.add(run)
            s.flush()
            ids[key] = run.id
    return ids


def _found(engine: Engine, viewer: Viewer, name: str, value: str) -> set[str]:
    with session_scope(engine, readonly=True) as s:
        rows, total = web_runs.list_runs(s, viewer, RunFilter(status="all", property_name=name,
                                                              property_value=value), NOW, 50, 0)
    assert total == len(rows)
    return {r.run.name for r in rows}


def test_the_runs_list_filters_by_a_property_value_on_both_databases(db_engine: Engine) -> None:
    team = new_id()
    _seed(db_engine, team)
    alice = Viewer("alice", team_ids=frozenset([team]))
    assert _found(db_engine, alice, "severity", "sev1") == {"a"}  # never the private run
    assert _found(db_engine, alice, "severity", "sev2") == {"b"}
    assert _found(db_engine, alice, "services", "db") == {"a"}  # a member, not "dbx"
    assert _found(db_engine, alice, "services", "dbx") == {"b"}
    assert _found(db_engine, alice, "services", "d") == set()  # no substring
    assert _found(db_engine, alice, "note", "db") == {"b"}  # a text property: its whole value
    assert _found(db_engine, alice, "severity", "sev9") == set()
    assert _found(db_engine, alice, "colour", "red") == set()
    assert _found(db_engine, Viewer("root", is_admin=True), "severity", "sev1") == {"a", "hidden"}
    with session_scope(db_engine, readonly=True) as s:
        choices = web_runs.filter_choices(s, alice)
    assert [(c.name, c.title, c.options) for c in choices.properties] == [
        ("services", "Services", ["api", "db", "dbx"]), ("severity", "Severity", ["sev1", "sev2"])]


def test_insights_break_runs_down_by_each_select_property(db_engine: Engine) -> None:
    team = new_id()
    _seed(db_engine, team)
    scope = insights.Scope(Viewer("alice", team_ids=frozenset([team])))
    with session_scope(db_engine, readonly=True) as s:
        data = insights.load(s, scope, NOW + 5000, "bot-id")
    found = calc.property_breakdowns(data.runs, data.property_values, data.property_defs)
    assert [p.name for p in found] == ["services", "severity"]  # by title; never the text property
    services, severity = found
    assert [(b.key, b.total, b.in_progress, b.finished) for b in severity.groups] == [
        ("sev1", 1, 1, 0), ("sev2", 1, 0, 1)]
    assert severity.unset == 1  # run "c"
    assert [(b.key, b.total) for b in services.groups] == [("api", 1), ("db", 1), ("dbx", 1)]
