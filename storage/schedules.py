"""Occurrences of playbooks' `[schedule]` (storage.models.ScheduleOccurrence): each is recorded once.

An occurrence is claimed by `INSERT ... ON CONFLICT DO NOTHING` on its primary key (playbook, time):
of two processes (or two rounds, or a process before and after a restart) exactly one inserts the row.
The winner of a start writes the run's start row (storage.starts.insert_start) in the same transaction,
so a crash leaves either both (the start service resumes the run) or neither (the occurrence is due
again); never a run without its occurrence, nor an occurrence whose run was lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.db import read_existing
from storage.models import PlaybookRecord, PlaybookVersion, RunStart, ScheduleOccurrence
from storage.starts import insert_start

STARTED = "started"
SKIPPED = "skipped"


def _insert_once(session: Session, values: dict[str, Any]) -> bool:
    """Insert the occurrence unless it is there; True when this call inserted it."""
    dialect = session.get_bind().dialect.name
    table: Any = ScheduleOccurrence.__table__  # type: ignore[attr-defined]
    # RETURNING says whether the row went in (psycopg's rowcount for ON CONFLICT DO NOTHING is not
    # reliable through SQLAlchemy's insert path); SQLite has RETURNING since 3.35.
    if dialect == "postgresql":
        stmt: Any = pg_insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - the bot runs on SQLite and PostgreSQL
        if session.get(ScheduleOccurrence, (values["playbook_id"], values["occurrence_at"])) is not None:
            return False
        stmt = sa_insert(table).values(**values)
    return session.execute(stmt.returning(table.c.playbook_id)).first() is not None


def record_skipped(session: Session, playbook_id: str, occurrence_at: int, reason: str, now: int) -> bool:
    """Record that the occurrence starts no run, and why; True when this call recorded it (so the caller
    says so once, not once per process)."""
    return _insert_once(session, {"playbook_id": playbook_id, "occurrence_at": occurrence_at, "state": SKIPPED,
                                  "run_id": "", "reason": reason[:2000], "recorded_at": now})


@dataclass
class OccurrenceStart:
    """Used by handlers.runs.StartService.begin in place of insert_start: in one transaction, claim the
    occurrence and write the start row, or neither. `outcome` says what happened:
    "started" (this process starts the run), "taken" (another process or an earlier round has the
    occurrence), "archived" (the playbook was archived or its file removed meanwhile: recorded as
    skipped), "changed" (the playbook has a newer version than the one planned with: nothing written,
    the caller plans again with the new version)."""

    playbook_id: str
    occurrence_at: int
    version_id: str  # the version the plan was made with ("" = not stored: no check)
    now: int
    archived_reason: str = "archived"  # the words recorded when the playbook was archived meanwhile
    missing_reason: str = "file removed"  # ... or its file removed
    outcome: str = ""
    reason: str = ""

    def __call__(self, session: Session, start: RunStart) -> bool:
        record = session.get(PlaybookRecord, self.playbook_id) if self.version_id else None
        if record is not None and (record.archived or record.missing):
            self.reason = self.archived_reason if record.archived else self.missing_reason
            self.outcome = "archived" if record_skipped(session, self.playbook_id, self.occurrence_at,
                                                        self.reason, self.now) else "taken"
            return False
        if record is not None and record.current_version_id != self.version_id:
            self.outcome = "changed"
            return False
        won = _insert_once(session, {"playbook_id": self.playbook_id, "occurrence_at": self.occurrence_at,
                                     "state": STARTED, "run_id": start.run_id, "reason": "",
                                     "recorded_at": self.now})
        if not won:
            self.outcome = "taken"
            return False
        insert_start(session, start)
        self.outcome = "started"
        return True


def recorded(session: Session, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of the (playbook, occurrence) pairs have a row already."""
    if not keys:
        return set()
    ids = sorted({pid for pid, _ in keys})
    times = sorted({at for _, at in keys})
    rows = session.exec(select(ScheduleOccurrence.playbook_id, ScheduleOccurrence.occurrence_at)
                        .where(col(ScheduleOccurrence.playbook_id).in_(ids),
                               col(ScheduleOccurrence.occurrence_at).in_(times)))
    wanted = set(keys)
    return {(pid, at) for pid, at in rows if (pid, at) in wanted}


def _schedule_key(data: dict[str, Any]) -> tuple[str, str, bool] | None:
    """What decides a version's occurrences: (cron, timezone, enabled), defaults filled as validation does."""
    table = data.get("schedule") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        return None
    return (" ".join(str(table.get("cron", "")).split()), str(table.get("timezone", "UTC")),
            bool(table.get("enabled", True)))


def schedule_since(session: Session, version_ids: list[str]) -> dict[str, int]:
    """For each current version: when its schedule began to hold, i.e. the created_at of the earliest version
    in the unbroken run of the playbook's versions, ending at this one, whose [schedule] (cron, timezone,
    enabled) is the same. An edit of anything else (a typo in a checklist) makes a new version but does not
    move the schedule's start, so an occurrence missed while the bot was down is still made up for."""
    out: dict[str, int] = {}
    wanted = select(PlaybookVersion).where(col(PlaybookVersion.id).in_(sorted(set(version_ids))))
    for current in list(session.exec(wanted)):
        key = _schedule_key(current.data)
        since = current.created_at
        older = list(session.exec(select(PlaybookVersion)
                                  .where(PlaybookVersion.playbook_id == current.playbook_id,
                                         col(PlaybookVersion.number) < current.number)
                                  .order_by(col(PlaybookVersion.number).desc())))
        for version in older:
            if _schedule_key(version.data) != key:
                break
            since = version.created_at
        out[current.id] = since
    return out


def occurrences_of(session: Session, playbook_id: str, limit: int = 50) -> list[ScheduleOccurrence]:
    """A playbook's recorded occurrences, newest first."""
    return list(session.exec(select(ScheduleOccurrence).where(ScheduleOccurrence.playbook_id == playbook_id)
                             .order_by(col(ScheduleOccurrence.occurrence_at).desc()).limit(limit)))


def skipped_since(session: Session, since: int) -> list[ScheduleOccurrence]:
    """Occurrences recorded as skipped since `since`, oldest first."""
    return list(session.exec(select(ScheduleOccurrence)
                             .where(ScheduleOccurrence.state == SKIPPED, col(ScheduleOccurrence.recorded_at) >= since)
                             .order_by(col(ScheduleOccurrence.occurrence_at), col(ScheduleOccurrence.playbook_id))))


def read_skipped(url: str, since: int) -> list[ScheduleOccurrence]:
    """For `python -m bot check`: occurrences skipped since `since` (none when the database is not there or
    not migrated that far). Writes nothing."""
    return read_existing(url, lambda session: skipped_since(session, since), [])
