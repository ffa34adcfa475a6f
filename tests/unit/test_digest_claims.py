"""The digest's rows on SQLite and PostgreSQL: settings default on, and each person is claimed once a day."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from storage import settings as digests
from storage.db import session_scope

pytest_plugins = ["tests.pg"]

A, B, C = "a" * 26, "b" * 26, "c" * 26


def claim(engine: Engine, users: list[str], day: int, monday: bool = False) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return digests.claim(session, users, day, monday)


def test_settings_default_on_and_change_per_person(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        row = digests.get_settings(session, A)
        assert (row.daily_digest, row.weekly_digest) == (True, True)
        assert digests.set_setting(session, A, "digest", False).daily_digest is False
    with session_scope(db_engine) as session:
        row = digests.set_setting(session, A, "weekly-digest", False)
        assert (row.daily_digest, row.weekly_digest) == (False, False)
        assert digests.get_settings(session, B).daily_digest is True


def test_once_a_day_whoever_claims(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        digests.set_setting(session, B, "digest", False)  # B: weekly only
    assert claim(db_engine, [A, B, C], 100) == [(A, "daily"), (C, "daily")]
    assert claim(db_engine, [A, B, C], 100) == []  # a second round, or another process
    with session_scope(db_engine) as session:
        digests.release(session, C, 100)  # C's message failed: a later round may send it
    assert claim(db_engine, [A, B, C], 100) == [(C, "daily")]
    assert claim(db_engine, [A, B, C], 101, monday=True) == [(A, "weekly"), (B, "weekly"), (C, "weekly")]
    assert claim(db_engine, [A, B, C], 101, monday=True) == []
