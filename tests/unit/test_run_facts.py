"""run_facts (storage/run_facts.py): the insights page's per-run fold of the timeline stays equal to folding
the events themselves, whatever order and transactions the events come in, on two engines (two processes)
writing one run, and as built by migration 0022 for the runs stored before it."""
from __future__ import annotations

import random
import threading
from typing import Any

import sqlalchemy
import sqlmodel
from sqlalchemy import and_, case, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot.domain.permissions import Viewer
from storage import insights, run_facts
from storage.db import make_engine, migrate, session_scope
from storage.ids import new_id
from storage.models import Run, RunFacts, TimelineEvent
from storage.reminders import record_sent
from storage.timeline import add_timeline

NOW = 1_800_000_000_000
MIN = 60_000
BOT = "bot-id"
ADMIN = insights.Scope(Viewer("root", is_admin=True))
TYPES = ["run_started", "run_finished", "run_restored", "status_updated", "status_updated", "item_state_changed",
         "assignee_changed", "command_ran", "retrospective_published", "retrospective_cancelled", "reminder_sent",
         "item_added", "participant_joined"]


def reference(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """What the page showed before run_facts, straight from the events: the GROUP BY over each run's
    timeline and the window function over its starts and updates (the old storage/insights.py)."""
    ev = TimelineEvent.__table__.c  # type: ignore[attr-defined]
    runs = Run.__table__.c  # type: ignore[attr-defined]

    def at_if(condition: Any) -> Any:
        return case((condition, ev.at), else_=None)

    kind = ev.type
    human = and_(kind.in_(run_facts.ACTION_TYPES), ev.actor_id != "", ev.actor_id != BOT)
    with engine.connect() as c:
        folded = {r[0]: tuple(r[1:]) for r in c.execute(
            select(ev.run_id, func.min(at_if(kind == "run_started")), func.max(at_if(kind == "run_finished")),
                   func.min(at_if(kind == "status_updated")), func.max(at_if(kind == "status_updated")),
                   func.min(at_if(human)), func.min(at_if(kind == "retrospective_published")),
                   func.sum(case((kind == "retrospective_cancelled", 1), else_=0)),
                   func.sum(case((kind == "reminder_sent", 1), else_=0))).group_by(ev.run_id))}
        prev = func.lag(ev.at).over(partition_by=ev.run_id, order_by=(ev.at, ev.id))
        steps = (select(ev.run_id.label("run_id"), ev.type.label("type"), ev.at.label("at"), prev.label("prev"))
                 .where(kind.in_(("run_started", "status_updated"))).subquery())
        gaps = {r[0]: (int(r[1]), int(r[2] or 0)) for r in c.execute(
            select(steps.c.run_id, func.count(),
                   func.sum(case((steps.c.at - steps.c.prev <= runs.reminder_interval_s * 1000, 1), else_=0)))
            .join(Run.__table__, runs.id == steps.c.run_id)
            .where(steps.c.type == "status_updated", steps.c.prev.is_not(None), runs.reminder_interval_s > 0,
                   runs.status_updates_enabled).group_by(steps.c.run_id))}
        rows = c.execute(select(runs.id, runs.status, runs.finished_at)).all()
    result = {}
    for run_id, status, finished_at in rows:
        f = folded.get(run_id, (None,) * 6 + (0, 0))
        last = f[1] if f[1] is not None else finished_at
        result[run_id] = (f[0], last if status == "finished" else None, f[2], f[3], f[4], f[5], bool(f[6]),
                          int(f[7] or 0), *gaps.get(run_id, (0, 0)))
    return result


def from_page(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with session_scope(engine, readonly=True) as s:
        stats = insights.run_stats(s, ADMIN, NOW, BOT)
    return {r.run_id: (r.started_at, r.finished_at, r.first_update_at, r.last_update_at, r.first_action_at,
                       r.retro_published_at, r.retro_cancelled, r.reminders_sent, r.update_gaps,
                       r.update_gaps_on_time) for r in stats}


def new_run(engine: Engine, status: str = "in_progress", interval_s: int = 1800) -> str:
    with session_scope(engine) as s:
        run = Run(id=new_id(), name="R", playbook_id="incident", playbook_title="Incident", team_id="t",
                  owner_id="alice", creator_id="alice", status=status, created_at=NOW - 1000 * MIN,
                  finished_at=NOW - MIN if status == "finished" else None, status_updates_enabled=True,
                  reminder_interval_s=interval_s)
        s.add(run)
        return run.id


def random_events(rnd: random.Random, n: int) -> list[tuple[str, int, str]]:
    # Few distinct times and actors, so ties in time and the bot acting first both happen.
    return [(rnd.choice(TYPES), NOW - rnd.randrange(0, 40) * 20 * MIN, rnd.choice(["", BOT, "alice", "bob"]))
            for _ in range(n)]


def test_facts_follow_events_written_in_any_order_and_batching(db_engine: Engine) -> None:
    rnd = random.Random(7)
    runs = [new_run(db_engine, rnd.choice(["in_progress", "finished"]), rnd.choice([0, 60, 1800, 3600]))
            for _ in range(25)]
    for _ in range(12):  # transactions, each with a few events on a few runs, out of time order
        with session_scope(db_engine) as s:
            for run_id in rnd.sample(runs, 5):
                for kind, at, actor in random_events(rnd, rnd.randrange(2, 8)):
                    if kind == "reminder_sent" and rnd.random() < 0.5:
                        record_sent(s, [(run_id, at, "reminder", {})])
                    else:
                        add_timeline(s, run_id, kind, at, actor)
                if rnd.random() < 0.3:
                    s.flush()  # several flushes in one transaction
    expected = reference(db_engine)
    assert from_page(db_engine) == expected
    assert sum(v[8] for v in expected.values()) > 10 and any(v[4] is not None for v in expected.values())
    # The interval counts as it is now (an update may change it): nothing stored depends on it.
    with session_scope(db_engine) as s:
        s.execute(update(Run).where(col(Run.id).in_(runs[:10])).values(reminder_interval_s=2400))
        s.execute(update(Run).where(col(Run.id).in_(runs[10:15])).values(status_updates_enabled=False))
    assert from_page(db_engine) == reference(db_engine)


def test_facts_of_a_run_started_updated_finished_restored_finished_and_retro_published(db_engine: Engine) -> None:
    run_id = new_run(db_engine)
    steps = [("run_started", 0, "alice"), ("item_state_changed", 2, BOT), ("status_updated", 20, "alice"),
             ("reminder_sent", 70, ""), ("status_updated", 90, "bob"), ("run_finished", 100, "alice"),
             ("run_restored", 110, "alice"), ("status_updated", 115, "alice"), ("run_finished", 130, "alice"),
             ("retrospective_published", 200, "alice")]
    for kind, minute, actor in steps:  # one transaction each, as the bot writes them
        with session_scope(db_engine) as s:
            add_timeline(s, run_id, kind, NOW - 1000 * MIN + minute * MIN, actor)
    with session_scope(db_engine) as s:
        row = s.get(RunFacts, run_id)
        assert row is not None
        start = NOW - 1000 * MIN
        assert (row.started_at, row.finished_at, row.first_update_at, row.last_update_at) == (
            start, start + 130 * MIN, start + 20 * MIN, start + 115 * MIN)
        assert (row.first_action_at, row.first_action_by, row.other_action_at) == (
            start + 2 * MIN, BOT, start + 20 * MIN)
        assert (row.retro_published_at, row.reminders_sent, row.update_gaps) == (start + 200 * MIN, 1,
                                                                                 [20 * MIN, 70 * MIN, 25 * MIN])
    assert from_page(db_engine) == reference(db_engine)
    assert from_page(db_engine)[run_id][4] == NOW - 980 * MIN  # the bot's item change is no person's action


def test_two_processes_writing_one_run(db_url: str) -> None:
    """Two engines (as two bot processes) add events to the same runs at once: neither's events are lost
    from the fold (the facts row is locked before it is recomputed)."""
    migrate(db_url)
    first, second = make_engine(db_url), make_engine(db_url)
    try:
        runs = [new_run(first) for _ in range(3)]
        errors: list[BaseException] = []

        def write(engine: Engine, actor: str, seed: int) -> None:
            rnd = random.Random(seed)
            try:
                for _ in range(15):
                    with session_scope(engine) as s:
                        for run_id in runs:
                            add_timeline(s, run_id, rnd.choice(["status_updated", "reminder_sent", "command_ran"]),
                                         NOW - rnd.randrange(1000) * MIN, actor)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(e, a, i)) for i, (e, a) in
                   enumerate([(first, "alice"), (second, "bob")])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert from_page(first) == reference(first)
    finally:
        first.dispose()
        second.dispose()


def test_migration_0022_folds_the_timelines_stored_before_it(db_url: str) -> None:
    migrate(db_url, "0021")
    engine = make_engine(db_url)
    try:
        rnd = random.Random(3)
        # The tables as they are at 0021 (read from the database, not today's models, which may have more).
        runs = sqlalchemy.Table("runs", sqlalchemy.MetaData(), autoload_with=engine)
        events = sqlalchemy.Table("timeline_events", sqlalchemy.MetaData(), autoload_with=engine)
        ids = [new_id() for _ in range(40)]
        with engine.begin() as c:  # as the tables were at 0021: no run_facts yet, so around the ORM
            c.execute(runs.insert(), [dict(
                id=run_id, seq=n, name="R", summary="", playbook_id="p", playbook_title="P", team_id="t",
                channel_id=new_id(), private=False, owner_id="alice", creator_id="alice",
                status="finished" if n % 2 else "in_progress", created_at=NOW - 1000 * MIN,
                finished_at=NOW if n % 2 else None, overview_post_id="", broadcast_threads={},
                status_updates_enabled=True, reminder_interval_s=1800, retrospective_enabled=True,
                retrospective_text="", retrospective_status="", retrospective_reminder_s=0,
                participants_may_finish=False, archive_on_finish=False, channel_archived=False,
                metric_defs=[], sweep_holder="", sweep_until=None) for n, run_id in enumerate(ids)])
            c.execute(events.insert(), [dict(id=new_id(), run_id=run_id, type=kind, at=at, actor_id=actor,
                                             summary="", details={})
                                        for run_id in ids[:-1] for kind, at, actor in random_events(rnd, 15)])
        migrate(engine)
        assert from_page(engine) == reference(engine)
        # The migration's frozen fold and the live one agree column for column.
        with session_scope(engine, readonly=True) as s:
            stored = {r.run_id: r.model_dump() for r in s.exec(sqlmodel.select(RunFacts)).all()}
            live = run_facts.fold(s.connection(), ids)
        assert stored == live
    finally:
        engine.dispose()
