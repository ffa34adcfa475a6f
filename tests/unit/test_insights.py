"""Insights: the pure computations on hand-made runs, retrospective metric values and playbook [[metrics]],
and the grouped queries (on SQLite and PostgreSQL) against the same numbers computed from the rows."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.domain import insights as calc
from bot.domain.insights import MetricSummary, MetricValue, RunStats
from bot.domain.metrics import MetricValueError, format_value, parse_value, prefill
from bot.domain.permissions import Viewer
from bot.playbooks.errors import PlaybookInvalid
from bot.playbooks.validation import parse_playbook
from storage import insights
from storage.db import session_scope
from storage.ids import new_id
from storage.models import Checklist, ChecklistItem, Participant, Run, TimelineEvent

pytest_plugins = ["tests.pg"]

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
NOW = 1_767_225_600_000 + 3 * DAY + 5 * HOUR  # Sunday 2026-01-04 05:00 UTC


def stats(**fields: object) -> RunStats:
    values: dict[str, object] = {"run_id": new_id(), "name": "r", "playbook_id": "p", "playbook_title": "P",
                                 "team_id": "t", "owner_id": "o", "status": "in_progress", "created_at": NOW - DAY}
    values.update(fields)
    return RunStats(**values)  # type: ignore[arg-type]


# --- summaries ---------------------------------------------------------------------------------------

def test_median_and_nearest_rank_p90() -> None:
    assert calc.median([]) is None and calc.percentile([], 90) is None
    assert calc.median([5, 1, 3]) == 3 and calc.median([1, 2, 3, 10]) == 2.5
    assert calc.percentile(list(range(1, 11)), 90) == 9
    assert calc.percentile(list(range(1, 12)), 90) == 10  # ceil(9.9) = 10th
    d = calc.summarize([1, 2, 3, 100])
    assert (d.count, d.median, d.p90, d.mean) == (4, 2.5, 100, 26.5)


def test_time_to_finish_uses_finished_runs_from_first_start_to_last_finish() -> None:
    runs = [stats(status="finished", started_at=NOW - 10 * HOUR, finished_at=NOW - 8 * HOUR),
            stats(status="finished", created_at=NOW - 5 * HOUR, finished_at=NOW - 1 * HOUR),  # no start event
            stats(status="in_progress", started_at=NOW - HOUR)]
    d = calc.time_to_finish(runs)
    assert (d.count, d.median, d.mean) == (2, 3 * HOUR, 3 * HOUR)


def test_first_update_and_first_action_count_runs_without_apart() -> None:
    runs = [stats(started_at=NOW - HOUR, first_update_at=NOW - HOUR + 10 * MIN, first_action_at=NOW - HOUR + MIN),
            stats(started_at=NOW - HOUR, first_update_at=NOW - HOUR + 30 * MIN),
            stats(started_at=NOW - HOUR)]
    up = calc.time_to_first_update(runs)
    assert (up.count, up.median, up.without) == (2, 20 * MIN, 1)
    act = calc.time_to_first_action(runs)
    assert (act.count, act.median, act.without) == (1, MIN, 2)


def test_punctuality_on_time_share_and_overdue_now() -> None:
    late = stats(reminder_interval_s=1800, started_at=NOW - 2 * HOUR, last_update_at=NOW - HOUR,
                 update_gaps=3, update_gaps_on_time=2, reminders_sent=4)
    fine = stats(reminder_interval_s=1800, started_at=NOW - 10 * MIN, update_gaps=0)
    done = stats(status="finished", reminder_interval_s=1800, started_at=NOW - DAY, finished_at=NOW - HOUR,
                 update_gaps=1, update_gaps_on_time=1)
    none = stats(reminder_interval_s=0, started_at=NOW - DAY)
    p = calc.punctuality([late, fine, done, none], NOW)
    assert (p.runs, p.gaps, p.on_time, p.overdue_now, p.reminders_sent) == (3, 4, 3, 1, 4)
    assert p.on_time_share == 0.75 and p.overdue_run_ids == (late.run_id,)
    assert not calc.update_overdue(stats(reminder_interval_s=1800, started_at=NOW - 30 * MIN), NOW)
    assert calc.update_overdue(stats(reminder_interval_s=1800, started_at=NOW - 30 * MIN - 1), NOW)


def test_weeks_start_on_sunday_utc_and_twelve_are_counted() -> None:
    assert calc.week_start(NOW) == NOW - 5 * HOUR  # a Sunday: its own midnight
    saturday = NOW - 6 * HOUR
    assert calc.week_start(saturday) == NOW - 5 * HOUR - 7 * DAY
    runs = [stats(created_at=NOW), stats(created_at=saturday), stats(created_at=saturday - DAY),
            stats(created_at=NOW - 12 * 7 * DAY)]  # 12 weeks back: outside
    weeks = calc.started_per_week(runs, NOW)
    assert len(weeks) == 12 and [w.count for w in weeks[-2:]] == [2, 1] and sum(w.count for w in weeks) == 3
    assert weeks[0].start == calc.week_start(NOW) - 11 * 7 * DAY


def test_finished_change_is_new_when_nothing_before_and_not_truncated() -> None:
    def finished(days_ago: float) -> RunStats:
        return stats(status="finished", finished_at=int(NOW - days_ago * DAY))
    change = calc.finished_in_window([finished(1), finished(2), finished(40)], NOW)
    assert (change.current, change.previous, change.percent, change.text) == (2, 1, 100.0, "+100%")
    three = calc.finished_in_window([finished(1), finished(2), finished(40), finished(41), finished(42)], NOW)
    assert three.text == "-33.3%"  # integers divided first would say -0% (the plugin's stats.go)
    assert calc.finished_in_window([finished(1)], NOW).text == "new"
    assert calc.finished_in_window([], NOW).text == "no change"
    # Windows are [start, end): exactly 30 days ago belongs to the current window.
    assert calc.finished_in_window([finished(30)], NOW).current == 1
    assert calc.finished_in_window([finished(60)], NOW).previous == 1


def test_retro_completion_counts_published_before_finishing_and_declined() -> None:
    f = NOW - DAY
    runs = [stats(status="finished", retrospective_enabled=True, finished_at=f, retro_published_at=f + 2 * HOUR),
            stats(status="finished", retrospective_enabled=True, finished_at=f, retro_published_at=f - HOUR),
            stats(status="finished", retrospective_enabled=True, finished_at=f, retro_cancelled=True),
            stats(status="finished", retrospective_enabled=True, finished_at=f),
            stats(status="finished", retrospective_enabled=False, finished_at=f)]
    r = calc.retro_completion(runs, NOW)
    assert (r.eligible, r.published, r.declined, r.outstanding, r.share) == (4, 2, 1, 1, 0.5)
    assert r.time_to_publish.median == HOUR  # (2h + 0) / 2


def test_overdue_items_top_titles_top_playbooks_and_breakdowns() -> None:
    runs = [stats(overdue_items=2), stats(overdue_items=1), stats(status="finished", overdue_items=5)]
    assert calc.overdue_items(runs) == calc.OverdueItems(3, 2)
    pairs = [("a", "Call legal"), ("b", "Call legal"), ("b", "Call legal "), ("c", "Tweet")]
    assert calc.top_titles(pairs) == [calc.TitleCount("Call legal", 2), calc.TitleCount("Tweet", 1)]
    runs = [stats(playbook_id="inc", created_at=NOW - HOUR), stats(playbook_id="inc", created_at=NOW - 3 * DAY),
            stats(playbook_id="dep", created_at=NOW - 20 * DAY), stats(playbook_id="old", created_at=NOW - 40 * DAY)]
    top = calc.top_playbooks(runs, NOW)
    assert [(t.playbook_id, t.today, t.days7, t.days28) for t in top] == [("inc", 1, 2, 2), ("dep", 0, 0, 1)]
    by = calc.breakdown(runs + [stats(playbook_id="dep", status="finished", finished_at=NOW)], "playbook_id")
    assert [(b.key, b.total, b.in_progress, b.finished) for b in by] == [
        ("dep", 2, 1, 1), ("inc", 2, 2, 0), ("old", 1, 1, 0)]


def test_metric_summary_average_last10_change_range_and_distance() -> None:
    empty = MetricSummary("Cost", "currency", None)
    assert (empty.average, empty.last10, empty.change, empty.minimum, empty.distance) == (None,) * 5
    values = tuple(MetricValue(str(i), "r", v, i) for i, v in enumerate([10] * 10 + [15] * 9 + [16]))
    s = MetricSummary("Customers", "integer", 12, values)
    assert s.average == 12  # floor(251 / 20 = 12.55)
    assert (s.last10, s.previous10) == (15, 10)  # floor(151 / 10)
    assert s.change == 50.0 and (s.minimum, s.maximum) == (10, 16) and s.distance == 0
    assert s.recent(1) == [(values[-1], 4)]


# --- metric values and [[metrics]] ------------------------------------------------------------------

def test_metric_values_parse_by_type() -> None:
    assert parse_value("duration", "1h30m") == 90 * MIN
    assert parse_value("duration", "01:02:03") == (24 * 60 + 2 * 60 + 3) * MIN
    assert parse_value("currency", "1,250.5") == 125_050 and parse_value("currency", "$3") == 300
    assert parse_value("integer", " 42 ") == 42
    for kind, raw in [("duration", "soon"), ("duration", "00:25:00"), ("duration", "1.5h"),
                      ("currency", "12.345"), ("currency", "ten"), ("integer", "3.5"), ("integer", "")]:
        with pytest.raises(MetricValueError):
            parse_value(kind, raw)
    assert format_value("duration", 90 * MIN) == "1h 30m" and format_value("currency", 125_050) == "1,250.50"
    assert format_value("integer", 1234567) == "1,234,567" and format_value("integer", None) == "N/A"
    assert parse_value("duration", prefill("duration", 90 * MIN)) == 90 * MIN


BASE = 'title = "Incident"\n'


def test_playbook_metrics_parse_with_targets() -> None:
    pb = parse_playbook({"title": "Incident", "metrics": [
        {"title": "Time to detect", "type": "duration", "target": "2h", "description": "From alert to page."},
        {"title": "Cost", "type": "currency", "target": 1250.5},
        {"title": "Customers", "type": "integer"}]}, playbook_id="incident", path="incident.toml")
    assert [(m.title, m.type, m.target) for m in pb.metrics] == [
        ("Time to detect", "duration", 2 * HOUR), ("Cost", "currency", 125_050), ("Customers", "integer", None)]


def test_playbook_metrics_problems_name_their_keys() -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook({"title": "Incident", "metrics": [
            {"title": "A", "type": "money"},
            {"title": "B", "type": "duration", "target": 2},
            {"title": "C", "type": "integer", "target": "10"},
            {"type": "integer", "unit": "x"},
            {"title": "a", "type": "integer", "target": 1.5}]}, playbook_id="incident", path=Path("incident.toml"))
    text = str(caught.value)
    for expected in ['incident.toml: metrics[1].type: expected "duration", "currency" or "integer", got "money"',
                     'metrics[2].target: expected a duration string like "2h"',
                     "metrics[3].target: expected a number like 10 (without quotes)",
                     "metrics[4].title: required", "metrics[4].unit: unknown key",
                     "metrics[5].title: \"a\" is the title of an earlier metric",
                     "metrics[5].target: expected a whole number"]:
        assert expected in text, text
    with pytest.raises(PlaybookInvalid, match="at most 4"):
        parse_playbook({"title": "I", "metrics": [{"title": str(i), "type": "integer"} for i in range(5)]},
                       playbook_id="i", path="i.toml")


# --- the grouped queries --------------------------------------------------------------------------

def _seed(engine: Engine, viewer_id: str, team: str) -> dict[str, str]:
    """Three runs: alice's finished one with a full timeline, a public one in progress with an overdue
    item, and someone else's private one alice may not see."""
    ids = {}
    with session_scope(engine) as s:
        for key, owner, private, status in [("mine", viewer_id, True, "finished"),
                                            ("public", "bob", False, "in_progress"),
                                            ("hidden", "dave", True, "finished")]:
            run = Run(id=new_id(), name=key, playbook_id="incident", playbook_title="Incident", team_id=team,
                      private=private, owner_id=owner, creator_id=owner, status=status, created_at=NOW - 10 * HOUR,
                      finished_at=NOW - 2 * HOUR if status == "finished" else None, status_updates_enabled=True,
                      reminder_interval_s=3600, retrospective_enabled=True)
            s.add(run)
            s.flush()
            ids[key] = run.id
            s.add(Participant(run_id=run.id, user_id=owner, joined_at=run.created_at))
            checklist = Checklist(id=new_id(), run_id=run.id, position=0, title="Triage")
            s.add(checklist)
            s.flush()
            s.add(ChecklistItem(id=new_id(), run_id=run.id, checklist_id=checklist.id, position=0, title="Page legal",
                                state="skipped"))
            s.add(ChecklistItem(id=new_id(), run_id=run.id, checklist_id=checklist.id, position=1, title="Fix",
                                due_at=NOW - HOUR))
            added = ChecklistItem(id=new_id(), run_id=run.id, checklist_id=checklist.id, position=2, title="Call AWS")
            s.add(added)
            start = run.created_at
            events = [("run_started", start, owner), ("reminder_sent", start + 60 * MIN, ""),
                      ("item_state_changed", start + 5 * MIN, "bot-id"),  # the bot: not a person's action
                      ("assignee_changed", start + 7 * MIN, owner),
                      ("status_updated", start + 50 * MIN, owner), ("status_updated", start + 3 * HOUR, owner),
                      ("item_added", start + HOUR, owner)]
            if status == "finished":
                events += [("run_finished", NOW - 3 * HOUR, owner), ("run_restored", NOW - 2.5 * HOUR, owner),
                           ("run_finished", NOW - 2 * HOUR, owner), ("retrospective_published", NOW - HOUR, owner)]
            for kind, at, actor in events:
                details = {"item_id": added.id, "checklist_id": checklist.id} if kind == "item_added" else {}
                s.add(TimelineEvent(id=new_id(), run_id=run.id, type=kind, at=int(at), actor_id=actor,
                                    summary="Triage: Call AWS" if kind == "item_added" else "", details=details))
    return ids


def test_queries_fold_each_run_in_a_few_statements_and_respect_visibility(db_engine: Engine) -> None:
    team = new_id()
    ids = _seed(db_engine, "alice", team)
    statements: list[str] = []
    event.listen(db_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with session_scope(db_engine, readonly=True) as s:
        data = insights.load(s, insights.Scope(Viewer("alice", team_ids=frozenset([team]))), NOW, "bot-id")
    assert len([q for q in statements if q.lstrip().upper().startswith("SELECT")]) <= 11  # grouped, not per run
    by_id = {r.run_id: r for r in data.runs}
    assert set(by_id) == {ids["mine"], ids["public"]}
    mine = by_id[ids["mine"]]
    start = NOW - 10 * HOUR
    assert (mine.started_at, mine.finished_at, mine.first_update_at, mine.last_update_at) == (
        start, NOW - 2 * HOUR, start + 50 * MIN, start + 3 * HOUR)
    assert mine.first_action_at == start + 7 * MIN  # the bot's item change does not count
    assert (mine.retro_published_at, mine.reminders_sent) == (NOW - HOUR, 1)
    assert (mine.update_gaps, mine.update_gaps_on_time) == (2, 1)  # 50m on time, 2h10m late
    assert (mine.overdue_items, by_id[ids["public"]].overdue_items) == (0, 1)  # finished runs: none
    assert data.skipped == [("Page legal", 2)]
    assert sorted(data.added) == sorted([(ids["mine"], "Call AWS"), (ids["public"], "Call AWS")])
    assert data.playbooks == [("incident", "Incident")] and data.teams == [team]
    # Filters: another team or playbook leaves nothing.
    with session_scope(db_engine, readonly=True) as s:
        assert insights.run_stats(s, insights.Scope(Viewer("alice", team_ids=frozenset([team])), team_id="x"),
                                  NOW, "b") == []
        assert insights.run_stats(s, insights.Scope(Viewer("alice", team_ids=frozenset([team])),
                                                    playbook_id="deploy"), NOW, "b") == []
        admin = insights.run_stats(s, insights.Scope(Viewer("root", is_admin=True)), NOW, "b")
    assert len(admin) == 3


def test_metric_values_are_replaced_on_publish_and_grouped_per_playbook(db_engine: Engine) -> None:
    team = new_id()
    ids = _seed(db_engine, "alice", team)
    with session_scope(db_engine) as s:
        run = s.get(Run, ids["mine"])
        assert run is not None
        run.metric_defs = [{"title": "Cost", "type": "currency", "description": "", "target": 100}]
        s.add(run)
        insights.save_metrics(s, ids["mine"], [(0, "Cost", "currency", 500)], NOW)
    with session_scope(db_engine) as s:
        insights.save_metrics(s, ids["mine"], [(0, "Cost", "currency", 700)], NOW + 1)
        insights.save_metrics(s, ids["hidden"], [(0, "Cost", "currency", 9)], NOW)
    with session_scope(db_engine, readonly=True) as s:
        groups = insights.metric_rows(s, insights.Scope(Viewer("alice", team_ids=frozenset([team]))))
        assert insights.run_metrics(s, ids["mine"]) == {0: 700}
    assert len(groups) == 1 and groups[0].definitions[0]["target"] == 100
    assert [v.value for v in groups[0].values[0]] == [700]
