"""Storage: engine set-up, migrations, the tables' constraints, concurrency and the async bridge.

Tests taking `db_url` or `db_engine` run twice, on SQLite and on a real PostgreSQL (tests/pg.py).
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, SQLModel, select

from storage.db import (
    DEFAULT_URL,
    Database,
    alembic_config,
    is_conflict,
    make_engine,
    migrate,
    normalize_url,
    session_scope,
)
from storage.ids import ALPHABET, is_id, new_id
from storage.models import (
    Checklist,
    ChecklistItem,
    Follower,
    Participant,
    Reminder,
    Run,
    StatusUpdate,
    TimelineEvent,
)

# Harmless if tests/conftest.py registers the plugin too.
pytest_plugins = ["tests.pg"]

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z in milliseconds
CHILD_TABLES = (Checklist, ChecklistItem, Participant, Follower, TimelineEvent, StatusUpdate, Reminder)


def make_run(**fields: Any) -> Run:
    values: dict[str, Any] = {"id": new_id(), "name": "Checkout is down", "playbook_id": "incident",
                              "playbook_title": "Incident response", "team_id": new_id(),
                              "owner_id": new_id(), "creator_id": new_id(), "created_at": NOW}
    values.update(fields)
    return Run(**values)


def add_run_with_everything(session: Session, items_per_checklist: int = 2) -> Run:
    """A run with two checklists of items, participants, a follower, timeline, a status update, a reminder."""
    run = make_run(broadcast_threads={"town-square-id": "root-post-id"})
    session.add(run)
    session.flush()  # parents first: PostgreSQL checks foreign keys per statement
    for position, title in enumerate(["Triage", "Resolve"]):
        checklist = Checklist(id=new_id(), run_id=run.id, position=position, title=title)
        session.add(checklist)
        session.flush()
        for n in range(items_per_checklist):
            session.add(ChecklistItem(id=new_id(), run_id=run.id, checklist_id=checklist.id, position=n,
                                      title=f"{title} step {n}", due_at=NOW + 900_000))
    session.add(Participant(run_id=run.id, user_id=run.owner_id, joined_at=NOW))
    session.add(Participant(run_id=run.id, user_id=new_id(), joined_at=NOW + 1))
    session.add(Follower(run_id=run.id, user_id=new_id()))
    session.add(TimelineEvent(id=new_id(), run_id=run.id, type="run_started", at=NOW, actor_id=run.owner_id,
                              summary="started", details={"playbook": "incident", "members": ["a", "b"]}))
    session.add(StatusUpdate(id=new_id(), run_id=run.id, at=NOW + 60_000, author_id=run.owner_id,
                             message="**Impact:** none yet"))
    session.add(Reminder(id=new_id(), run_id=run.id, kind="status_update", due_at=NOW + 1_800_000,
                         interval_s=1800))
    return run


def counts(session: Session, run_id: str) -> dict[str, int]:
    return {table.__tablename__: session.exec(  # type: ignore[attr-defined]
        select(func.count()).select_from(table).where(table.run_id == run_id)).one()  # type: ignore[attr-defined]
        for table in CHILD_TABLES}


def no_backoff(_attempt: int) -> float:
    return 0.0


def in_two_threads(work: Callable[[int], None]) -> None:
    """Runs work(0) and work(1) in two threads and re-raises the first failure."""
    errors: list[BaseException] = []

    def target(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]


# --- ids --------------------------------------------------------------------------------------------

def test_new_id_is_26_characters_of_mattermosts_alphabet() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 26 and set(i) <= set(ALPHABET) and is_id(i) for i in ids)
    assert not is_id("A" * 26) and not is_id(new_id()[:25]) and not is_id(None)


# --- engine -----------------------------------------------------------------------------------------

def test_sqlite_pragmas_are_on_for_every_pooled_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()


def test_default_url_is_a_file_under_data_created_on_demand(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine()
    try:
        assert str(engine.url) == DEFAULT_URL
        assert (tmp_path / "data").is_dir()
        migrate(engine)
        assert (tmp_path / "data" / "playbooks.db").is_file()
    finally:
        engine.dispose()


def test_postgresql_urls_use_psycopg_3() -> None:
    for url in ("postgresql://u:p@h/db", "postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"):
        assert normalize_url(url).drivername == "postgresql+psycopg"


def test_sqlite_readers_do_not_queue_behind_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms=0)
    migrate(engine)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with session_scope(engine, readonly=True) as session:
            assert session.exec(select(func.count()).select_from(Run)).one() == 0
        with pytest.raises(OperationalError, match="locked"), session_scope(engine) as session:
            session.add(make_run())
    finally:
        writer.close()
        engine.dispose()


# --- migrations -------------------------------------------------------------------------------------

def test_migrations_create_exactly_the_models_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        migrate(engine)  # a second start-up finds nothing to do
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    SQLModel.metadata)
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert diff == [], f"migrations and storage/models.py differ; write a migration: {diff}"
        assert set(inspect(engine).get_table_names()) == set(SQLModel.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrading_a_database_with_runs_keeps_every_row(db_url: str) -> None:
    """SQLite's batch migrations rebuild `runs` (copy, DROP, rename); with foreign keys on, the DROP used to
    cascade-delete every checklist, item, participant and event of every run (0016 and later did so)."""
    from sqlalchemy import MetaData, Table

    engine = make_engine(db_url)
    try:
        migrate(engine, "0015")
        meta = MetaData()
        meta.reflect(engine)
        run = {c.name: (0 if str(c.type) in ("INTEGER", "BIGINT", "BOOLEAN") else "")
               for c in meta.tables["runs"].columns}
        run.update(id="r1", finished_at=None, broadcast_threads={}, sweep_until=None, created_at=1)
        rows: dict[str, list[dict[str, Any]]] = {
            "runs": [run],
            "checklists": [dict(id="c1", run_id="r1", position=0, title="Triage", post_id="")],
            "checklist_items": [dict(id="i1", run_id="r1", checklist_id="c1", position=0, title="Page", description="",
                                     state="open", assignee_id="", due_at=None, due_noticed_at=None, command="",
                                     updated_at=0, updated_by="")],
            "participants": [dict(run_id="r1", user_id="alice", joined_at=1)],
            "timeline_events": [dict(id="e1", run_id="r1", type="run_started", at=1, actor_id="alice", summary="",
                                     details={})],
        }
        with engine.begin() as conn:
            for name, values in rows.items():
                table: Table = meta.tables[name]
                conn.execute(table.insert(), [{k: v for k, v in r.items() if k in table.c} for r in values])
        migrate(engine)
        with engine.connect() as conn:
            for name, values in rows.items():
                assert conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() == len(values), name
            # Foreign keys are enforced again on the connection the upgrade used.
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_migrations_downgrade_to_nothing_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate(engine)
        assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_two_processes_migrating_at_once_both_succeed(db_url: str) -> None:
    # Two engines stand for two bot processes starting together on an empty database.
    barrier = threading.Barrier(2, timeout=30)

    def start_up(_n: int) -> None:
        engine = make_engine(db_url, busy_timeout_ms=30_000)
        try:
            barrier.wait()
            migrate(engine)
        finally:
            engine.dispose()

    in_two_threads(start_up)
    engine = make_engine(db_url)
    try:
        assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrate_works_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.chdir("/")
    migrate(url)
    engine = make_engine(url)
    try:
        assert "runs" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


# --- tables -----------------------------------------------------------------------------------------

def test_a_run_with_everything_round_trips(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        run_id = add_run_with_everything(session).id
    with session_scope(db_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.broadcast_threads == {"town-square-id": "root-post-id"}
        assert (run.status, run.private, run.finished_at) == ("in_progress", True, None)
        assert counts(session, run_id) == {"checklists": 2, "checklist_items": 4, "participants": 2,
                                           "followers": 1, "timeline_events": 1, "status_updates": 1,
                                           "reminders": 1}
        titles = session.exec(select(ChecklistItem.title).where(ChecklistItem.run_id == run_id)
                               .order_by(ChecklistItem.checklist_id, ChecklistItem.position)).all()
        assert sorted(titles) == ["Resolve step 0", "Resolve step 1", "Triage step 0", "Triage step 1"]
        event = session.exec(select(TimelineEvent).where(TimelineEvent.run_id == run_id)).one()
        assert event.details == {"playbook": "incident", "members": ["a", "b"]}
        assert event.at == NOW  # BIGINT: milliseconds overflow a 32-bit column


def test_deleting_a_run_deletes_everything_of_it(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        doomed = add_run_with_everything(session).id
        kept = add_run_with_everything(session).id
    with session_scope(db_engine) as session:
        session.execute(text("DELETE FROM runs WHERE id = :id"), {"id": doomed})
    with session_scope(db_engine) as session:
        assert set(counts(session, doomed).values()) == {0}
        assert counts(session, kept)["checklist_items"] == 4


def test_deleting_a_checklist_deletes_its_items(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        run_id = add_run_with_everything(session).id
    with session_scope(db_engine) as session:
        first = session.exec(select(Checklist).where(Checklist.run_id == run_id, Checklist.position == 0)).one()
        session.delete(first)
    with session_scope(db_engine) as session:
        assert counts(session, run_id)["checklist_items"] == 2


def test_foreign_keys_and_unique_constraints_are_enforced(db_engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(db_engine) as session:
        session.add(Checklist(id=new_id(), run_id=new_id(), position=0, title="orphan"))
    with session_scope(db_engine) as session:
        run_id = add_run_with_everything(session).id
    with pytest.raises(IntegrityError), session_scope(db_engine) as session:
        session.add(Checklist(id=new_id(), run_id=run_id, position=0, title="same position"))
    with pytest.raises(IntegrityError), session_scope(db_engine) as session:
        session.add(Reminder(id=new_id(), run_id=run_id, kind="status_update"))


# --- concurrency ------------------------------------------------------------------------------------

def test_two_threads_updating_two_items_of_one_checklist_both_persist(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        run_id = add_run_with_everything(session).id
        checklist_id = session.exec(select(Checklist.id).where(Checklist.run_id == run_id,
                                                               Checklist.position == 0)).one()
    with session_scope(db_engine) as session:
        item_ids = session.exec(select(ChecklistItem.id).where(ChecklistItem.checklist_id == checklist_id)
                                .order_by(ChecklistItem.position)).all()
    rounds = 25
    barrier = threading.Barrier(2, timeout=30)

    def worker(n: int) -> None:
        for round_ in range(1, rounds + 1):
            barrier.wait()  # both threads start each round together
            # Like a button click: read the whole checklist (to re-render it), change one item.
            with session_scope(db_engine) as session:
                items = session.exec(select(ChecklistItem).where(ChecklistItem.checklist_id == checklist_id)).all()
                mine = next(item for item in items if item.id == item_ids[n])
                mine.state = "closed" if round_ % 2 else "open"
                mine.updated_at = NOW + round_
                mine.updated_by = f"thread-{n}"

    in_two_threads(worker)
    with session_scope(db_engine) as session:
        for n, item_id in enumerate(item_ids):
            item = session.get(ChecklistItem, item_id)
            assert item is not None
            assert (item.state, item.updated_at, item.updated_by) == ("closed", NOW + rounds, f"thread-{n}")


# --- the async bridge -------------------------------------------------------------------------------

async def test_database_runs_work_off_the_event_loop_and_commits(db_engine: Engine) -> None:
    loop_thread = threading.get_ident()

    def add(session: Session, name: str) -> tuple[str, int]:
        run = make_run(name=name)
        session.add(run)
        return run.id, threading.get_ident()

    async with Database(db_engine) as db:
        run_id, worker_thread = await db.run(add, "Outage")
        assert worker_thread != loop_thread
        run = await db.run(lambda session: session.get(Run, run_id), readonly=True)
        assert run is not None and run.name == "Outage"  # usable after the session closed


async def test_database_rolls_back_when_fn_raises(db_engine: Engine) -> None:
    def add_then_fail(session: Session) -> None:
        session.add(make_run())
        session.flush()
        raise LookupError("no such playbook")

    async with Database(db_engine) as db:
        with pytest.raises(LookupError):
            await db.run(add_then_fail)
        assert await db.run(lambda s: s.exec(select(func.count()).select_from(Run)).one()) == 0


async def test_database_concurrent_updates_of_different_items_all_persist(db_engine: Engine) -> None:
    async with Database(db_engine) as db:
        run_id = await db.run(lambda s: add_run_with_everything(s, items_per_checklist=8).id)
        item_ids = await db.run(lambda s: s.exec(select(ChecklistItem.id)
                                                 .where(ChecklistItem.run_id == run_id)).all())

        def close_item(session: Session, item_id: str) -> None:
            item = session.get(ChecklistItem, item_id)
            assert item is not None
            item.state = "closed"

        await asyncio.gather(*(db.run(close_item, item_id) for item_id in item_ids))
        states = await db.run(lambda s: s.exec(select(ChecklistItem.state)
                                               .where(ChecklistItem.run_id == run_id)).all())
    assert states == ["closed"] * 16


def _locked() -> OperationalError:
    return OperationalError("UPDATE ...", {}, sqlite3.OperationalError("database is locked"))


def _serialization_failure() -> OperationalError:
    return OperationalError("UPDATE ...", {}, psycopg.errors.SerializationFailure("could not serialize"))


@pytest.mark.parametrize("conflict", [_locked, _serialization_failure], ids=["sqlite-locked", "pg-40001"])
async def test_database_retries_conflicts(tmp_path: Path, conflict: Callable[[], OperationalError]) -> None:
    calls: list[int] = []

    def flaky(_session: Session) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise conflict()
        return "done"

    async with Database.from_url(f"sqlite:///{tmp_path / 'x.db'}", backoff=no_backoff) as db:
        assert await db.run(flaky) == "done"
        assert len(calls) == 3
        calls.clear()
        with pytest.raises(OperationalError):
            await db.run(flaky, retry_on_conflict=False)
        assert len(calls) == 1


async def test_database_gives_up_after_its_attempts_and_never_retries_other_errors(tmp_path: Path) -> None:
    calls: list[int] = []

    def always(session: Session, exc: Exception) -> None:
        calls.append(1)
        raise exc

    async with Database.from_url(f"sqlite:///{tmp_path / 'x.db'}", attempts=4, backoff=no_backoff) as db:
        with pytest.raises(OperationalError):
            await db.run(always, _locked())
        assert len(calls) == 4
        calls.clear()
        other = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: runs"))
        assert not is_conflict(other)
        with pytest.raises(OperationalError):
            await db.run(always, other)
        assert len(calls) == 1


async def test_a_real_sqlite_lock_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    migrate(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    attempts: list[int] = []

    def add(session: Session) -> str:
        attempts.append(1)
        try:
            run = make_run()
            session.add(run)
            session.flush()
            return run.id
        finally:
            if len(attempts) == 1:
                holder.rollback()  # ...and finishes after our first try failed

    # busy_timeout 0: fail at once rather than wait, so the retry is what gets the write through.
    async with Database(make_engine(f"sqlite:///{path}", busy_timeout_ms=0), backoff=no_backoff) as db:
        run_id = await db.run(add)
        assert len(attempts) == 2
        assert await db.run(lambda s: s.get(Run, run_id)) is not None
    holder.close()


async def test_a_real_postgresql_serialization_failure_is_retried(pg_url: str) -> None:
    engine = make_engine(pg_url)
    migrate(engine)
    with session_scope(engine) as session:
        run_id = session.merge(make_run()).id
    attempts: list[int] = []

    def bump(session: Session) -> int:
        attempts.append(1)
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        run = session.get(Run, run_id)
        assert run is not None
        if len(attempts) == 1:  # another bot process changes the run after we read it
            with engine.begin() as other:
                other.execute(text("UPDATE runs SET seq = seq + 1 WHERE id = :id"), {"id": run_id})
        run.seq += 1
        session.flush()
        return run.seq

    async with Database(engine, backoff=no_backoff) as db:
        assert await db.run(bump) == 2
    assert len(attempts) == 2


async def test_in_memory_sqlite_uses_one_worker() -> None:
    async with Database.from_url("sqlite://") as db:
        await db.migrate()
        run_id = await db.run(lambda s: s.merge(make_run()).id)
        assert await asyncio.gather(*(db.run(lambda s: s.get(Run, run_id).id) for _ in range(5))) == [run_id] * 5


def test_load_views_reads_many_runs_in_a_few_queries_and_matches_load_view(db_engine: Engine) -> None:
    from sqlalchemy import event

    from storage.runs import load_view, load_views

    with session_scope(db_engine) as session:
        ids = [add_run_with_everything(session, items_per_checklist=n).id for n in (1, 3, 2)]
    statements: list[str] = []
    event.listen(db_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with session_scope(db_engine, readonly=True) as session:
        runs = [session.get(Run, run_id) for run_id in ids]
        statements.clear()
        views = load_views(session, runs, with_history=True)
        queries_for_three = len(statements)
        singles = [load_view(session, run_id, True) for run_id in ids]
    assert [v.run.id for v in views] == ids
    for many, one in zip(views, singles, strict=True):
        assert [(c.id, [i.id for i in items]) for c, items in many.checklists] == \
            [(c.id, [i.id for i in items]) for c, items in one.checklists]
        assert many.participant_ids == one.participant_ids and many.follower_ids == one.follower_ids
        assert [e.id for e in many.timeline] == [e.id for e in one.timeline]
        assert (many.reminder.id if many.reminder else None) == (one.reminder.id if one.reminder else None)
    # One query per table whatever the number of runs (8 with history: run_links is the eighth), not one set
    # per run.
    assert queries_for_three <= 8


def test_a_proof_is_spent_once_and_old_ones_are_forgotten(db_engine: Engine) -> None:
    from storage.proofs import spend, unspend

    with session_scope(db_engine) as session:
        assert spend(session, [("t:a", "trigger", 1000), ("t:b", "trigger", 1000), ("t:a", "trigger", 1000)],
                     forget_before=0) == [True, True, False]
    with session_scope(db_engine) as session:
        assert spend(session, [("t:a", "trigger", 1000), ("d:c", "dialog", 5000)], forget_before=0) == [False, True]
        unspend(session, "d:c")
    with session_scope(db_engine) as session:
        # Forgetting what was made before 2000 lets "t:a" be spent again (it could not be accepted by then).
        assert spend(session, [("d:c", "dialog", 5000), ("t:a", "trigger", 3000)], forget_before=2000) == [True, True]


def test_one_process_at_a_time_sweeps_a_run_and_a_dead_ones_claim_runs_out(db_engine: Engine) -> None:
    from storage.runs import claim_sweep, release_sweep, replace_run_post, runs_to_sweep

    run = make_run(overview_post_id="p" * 26)
    done = make_run(status="finished", finished_at=NOW - 10)
    old = make_run(status="finished", finished_at=NOW - 10_000_000)
    ids = (run.id, done.id)
    with Session(db_engine, expire_on_commit=False) as s:
        s.add_all([run, done, old])
        s.commit()
    with Session(db_engine) as s:
        assert set(runs_to_sweep(s, NOW - 1000)) == set(ids)
        assert claim_sweep(s, run.id, "one", NOW, 60_000)
        assert not claim_sweep(s, run.id, "two", NOW + 1, 60_000)  # held
        assert claim_sweep(s, run.id, "one", NOW + 2, 60_000)  # the holder may renew
        assert claim_sweep(s, run.id, "two", NOW + 60_003, 60_000)  # "one" died: its claim ran out
        release_sweep(s, run.id, "one")  # a late release by the old holder frees nothing
        assert not claim_sweep(s, run.id, "one", NOW + 60_004, 60_000)
        release_sweep(s, run.id, "two")
        assert claim_sweep(s, run.id, "one", NOW + 60_005, 60_000)
        # Replacing a lost post succeeds once: a second replacement of the same old post is refused.
        assert replace_run_post(s, run.id, "", "p" * 26, "q" * 26)
        assert not replace_run_post(s, run.id, "", "p" * 26, "r" * 26)
        s.commit()
        assert s.get(Run, run.id).overview_post_id == "q" * 26  # type: ignore[union-attr]


def test_two_processes_numbering_a_playbooks_first_runs_at_once_get_two_numbers(db_engine: Engine) -> None:
    """The first run of a playbook in a team, started by two processes at the same moment: the
    counter's row does not exist yet for either, and neither may fail on its key."""
    from storage.runs import next_seq

    barrier = threading.Barrier(2)
    got: list[int] = []
    errors: list[BaseException] = []

    def allocate() -> None:
        try:
            with session_scope(db_engine) as session:
                barrier.wait(5)
                got.append(next_seq(session, "t" * 26, "incident"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=allocate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert sorted(got) == [1, 2]
    with session_scope(db_engine) as session:
        assert next_seq(session, "t" * 26, "incident") == 3
