"""Idempotency keys as rows (storage/idempotency.py), on SQLite and PostgreSQL: the first claim of a key
wins even when two processes race (two engines on one database, threads at once), a repeat with the same
body gets the stored answer, another body is a mismatch, a claim still in flight answers "in flight" until
it is stale and taken over, a 5xx releases it, and keys older than a day are purged."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine

from storage import idempotency as rows
from storage.db import make_engine, session_scope

DAY = 24 * 3600 * 1000


def claim(engine: Engine, key: str, body: str, now: int) -> rows.Claim:
    with session_scope(engine) as session:
        return rows.claim(session, "u" * 26, "POST /api/v0/runs", key, body, now, now - DAY, now - 300_000)


def test_claims_answers_mismatches_takeovers_and_purges(db_engine: Engine) -> None:
    assert claim(db_engine, "k1", "h1", 1_000_000).outcome == "new"
    assert claim(db_engine, "k1", "h1", 1_000_100).outcome == "in_flight"
    assert claim(db_engine, "k1", "h2", 1_000_100).outcome == "mismatch"
    with session_scope(db_engine) as session:
        rows.answer(session, "u" * 26, "POST /api/v0/runs", "k1", 201, {"id": "r1"})
    again = claim(db_engine, "k1", "h1", 1_000_200)
    assert (again.outcome, again.status, again.answer) == ("answered", 201, {"id": "r1"})
    # The same key on another route, or from another caller, is another key.
    with session_scope(db_engine) as session:
        assert rows.claim(session, "u" * 26, "POST /api/v0/runs/x/finish", "k1", "h1", 1_000_200, 0, 0).outcome == "new"
        assert rows.claim(session, "v" * 26, "POST /api/v0/runs", "k1", "h1", 1_000_200, 0, 0).outcome == "new"
    # A claim left in flight by a process that died is taken over once stale; a released one is free again.
    assert claim(db_engine, "k2", "h1", 2_000_000).outcome == "new"
    assert claim(db_engine, "k2", "h1", 2_000_000 + 299_000).outcome == "in_flight"
    assert claim(db_engine, "k2", "h1", 2_000_000 + 301_000).outcome == "new"
    with session_scope(db_engine) as session:
        rows.release(session, "u" * 26, "POST /api/v0/runs", "k2")
    assert claim(db_engine, "k2", "h9", 2_400_000).outcome == "new"
    # A day later the answered key is forgotten: the same key is a new request.
    assert claim(db_engine, "k1", "h2", 1_000_000 + DAY + 1).outcome == "new"
    with session_scope(db_engine) as session:
        assert rows.purge(session, 2_400_000 + DAY) >= 3
        assert rows.count(session) == 0


def test_of_many_racing_claims_exactly_one_wins(db_engine: Engine) -> None:
    engines = [db_engine, make_engine(db_engine.url.render_as_string(hide_password=False))]
    try:
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(lambda n: claim(engines[n % 2], "race", "h", 5_000_000).outcome, range(16)))
    finally:
        engines[1].dispose()
    assert outcomes.count("new") == 1, outcomes
    assert set(outcomes) == {"new", "in_flight"}
