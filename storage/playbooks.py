"""Playbooks and their versions: every save is a new immutable version; a playbook row says which is current.

The interchange form of a playbook is its data dict (what `tomllib` gives for a playbook file); this
module stores it as it is and never interprets it (bot.playbooks.parse_playbook does). Rules:

- `save_version` makes version max+1 and makes it current, in one transaction, unless the content (its
  canonical hash) is what is current already: then nothing new is written. Two bot processes saving the
  same file at the same moment therefore end with one version: the playbook's row is read FOR UPDATE, so
  the second waits and then finds the first's version current; where the row did not exist yet, the
  unique keys (the row's id, (playbook_id, number)) make the later insert fail, and it is tried again in a
  savepoint.
- Every change to a `playbooks` row sets `updated_at` to max(now, the table's max + 1), so `marker()`
  (max and count) changes whenever anything does, even between processes whose clocks differ.
- A file-managed playbook (`[playbooks] dir`) takes versions only from its file (`source="file"`): other
  saves raise FileManaged. A broken file leaves its last good version current and records the problems
  (`record_file_error`); a removed file marks the playbook `missing` (kept, no new runs) until it is back.
- Archived and missing playbooks start no runs; their runs, and every version, stay.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.db import read_existing
from storage.ids import new_id
from storage.models import PlaybookRecord, PlaybookVersion

SOURCES = ("file", "editor", "import", "improve", "duplicate")
_SAVE_ATTEMPTS = 5


class PlaybookStoreError(Exception):
    """A playbook operation refused; the message says why (for logs; callers word their own replies)."""


class FileManaged(PlaybookStoreError):
    """The playbook's versions come from its file; it cannot be saved from elsewhere."""


class PlaybookExists(PlaybookStoreError):
    """The id asked for is taken."""


class NoSuchPlaybook(PlaybookStoreError, LookupError):
    """No playbook (or no valid version of it) with that id."""




@dataclass(frozen=True)
class Entry:
    """A playbook row with its current version (None while it has no valid one)."""

    record: PlaybookRecord
    version: Optional[PlaybookVersion]

    @property
    def runnable(self) -> bool:
        """Whether new runs may start from it."""
        return self.version is not None and not self.record.archived and not self.record.missing


@dataclass(frozen=True)
class Saved:
    version: PlaybookVersion
    created: bool  # False: the content was current already, nothing new was written


def content_hash(data: Mapping[str, Any]) -> str:
    """The SHA-256 of the data's canonical JSON (sorted keys): equal dicts, equal hashes."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stamp(session: Session, now: int) -> int:
    """The next `updated_at`: never below now, always above every row's (see the module's rules)."""
    top = session.exec(select(func.max(PlaybookRecord.updated_at))).one()
    return max(now, int(top or 0) + 1)


def _touch(session: Session, record: PlaybookRecord, now: int, **values: Any) -> bool:
    """Set values on the row (and its updated_at) when any differs; whether anything changed."""
    if all(getattr(record, key) == value for key, value in values.items()):
        return False
    for key, value in values.items():
        setattr(record, key, value)
    record.updated_at = _stamp(session, now)
    session.add(record)
    session.flush()
    return True


def marker(session: Session) -> tuple[int, int]:
    """Changes whenever any playbook row does: (max(updated_at), count)."""
    top, count = session.exec(select(func.max(PlaybookRecord.updated_at), func.count())
                              .select_from(PlaybookRecord)).one()
    return int(top or 0), int(count or 0)


def get_playbook(session: Session, playbook_id: str) -> PlaybookRecord | None:
    return session.get(PlaybookRecord, playbook_id)


def get_version(session: Session, version_id: str) -> PlaybookVersion | None:
    return session.get(PlaybookVersion, version_id)


def current_version(session: Session, playbook_id: str) -> PlaybookVersion | None:
    record = session.get(PlaybookRecord, playbook_id)
    if record is None or record.current_version_id is None:
        return None
    return session.get(PlaybookVersion, record.current_version_id)


def get_entry(session: Session, playbook_id: str) -> Entry | None:
    """One playbook with its current version; None when there is no such playbook."""
    record = session.get(PlaybookRecord, playbook_id)
    if record is None:
        return None
    version = session.get(PlaybookVersion, record.current_version_id) if record.current_version_id else None
    return Entry(record, version)


def list_versions(session: Session, playbook_id: str) -> list[PlaybookVersion]:
    """Every version of a playbook, newest first."""
    return list(session.exec(select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook_id)
                             .order_by(col(PlaybookVersion.number).desc())).all())


def list_playbooks(session: Session, *, include_archived: bool = True) -> list[Entry]:
    """Every playbook with its current version, by id."""
    query = select(PlaybookRecord, PlaybookVersion).join(
        PlaybookVersion, col(PlaybookVersion.id) == col(PlaybookRecord.current_version_id), isouter=True)
    if not include_archived:
        query = query.where(col(PlaybookRecord.archived).is_(False))
    rows = session.exec(query.order_by(col(PlaybookRecord.id))).all()
    return [Entry(record, version) for record, version in rows]


def save_version(session: Session, playbook_id: str, data: Mapping[str, Any], *, source: str, now: int,
                 source_path: str = "", source_commit: str = "", author_id: str = "", note: str = "") -> Saved:
    """Save `data` as the playbook's new current version (number max+1), creating the playbook if new.

    When it equals the current version's content, nothing new is written (`created` False); a file's save
    still clears the playbook's error and missing mark. Raises FileManaged for a non-file save of a
    file-managed playbook.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown version source {source!r}")
    digest = content_hash(data)
    for attempt in range(1, _SAVE_ATTEMPTS + 1):
        try:
            with session.begin_nested():
                return _save(session, playbook_id, dict(data), digest, source, now, source_path, source_commit,
                             author_id, note)
        except IntegrityError:
            # Another process saved this playbook (or created it) at the same moment: read again.
            if attempt == _SAVE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _save(session: Session, playbook_id: str, data: dict[str, Any], digest: str, source: str, now: int,
          source_path: str, source_commit: str, author_id: str, note: str) -> Saved:
    from_file = source == "file"
    # The row is locked until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes writers), so
    # a concurrent save reads the current version only once this one is committed.
    record = session.get(PlaybookRecord, playbook_id, populate_existing=True, with_for_update=True)
    if record is None:
        record = PlaybookRecord(id=playbook_id, file_managed=from_file, path=source_path if from_file else "",
                                created_at=now, updated_at=_stamp(session, now))
        session.add(record)
        session.flush()
    elif record.file_managed and not from_file:
        raise FileManaged(f"playbook {playbook_id} is managed by its file {record.path}")
    elif from_file and not record.file_managed:
        raise PlaybookExists(f"playbook {playbook_id} was made in the bot (not from a file); rename the file")
    current = session.get(PlaybookVersion, record.current_version_id) if record.current_version_id else None
    file_state: dict[str, Any] = {"error": "", "missing": False, "path": source_path} if from_file else {}
    if current is not None and current.content_hash == digest:
        _touch(session, record, now, **file_state)
        return Saved(current, created=False)
    top = session.exec(select(func.max(PlaybookVersion.number))
                       .where(PlaybookVersion.playbook_id == playbook_id)).one()
    version = PlaybookVersion(id=new_id(), playbook_id=playbook_id, number=int(top or 0) + 1, data=data,
                              content_hash=digest, source=source, source_path=source_path,
                              source_commit=source_commit, author_id=author_id, note=note, created_at=now)
    session.add(version)
    session.flush()
    _touch(session, record, now, current_version_id=version.id, **file_state)
    return Saved(version, created=True)


def create_playbook(session: Session, base_id: str, data: Mapping[str, Any], *, source: str, now: int,
                    author_id: str = "", note: str = "", exact: bool = False) -> PlaybookVersion:
    """A new playbook (not file-managed) whose version 1 is `data`, under `base_id`, or, when that is taken
    and not `exact`, the first free `base_id-2`, `base_id-3`...; raises PlaybookExists when `exact` and
    taken."""
    for n in range(1, 1000):
        candidate = base_id if n == 1 else f"{base_id[:60]}-{n}"
        if session.get(PlaybookRecord, candidate) is not None:
            if exact:
                raise PlaybookExists(candidate)
            continue
        saved = save_version(session, candidate, data, source=source, now=now, author_id=author_id, note=note)
        if saved.created and saved.version.number == 1:
            return saved.version
        if exact:
            raise PlaybookExists(candidate)
    raise PlaybookExists(base_id)


def record_file_error(session: Session, playbook_id: str, path: str, error: str, now: int) -> bool:
    """A playbook's file is broken: keep its current version, remember the problems. Creates the row (with
    no version) for a new file that was never valid. Whether anything changed."""
    record = session.get(PlaybookRecord, playbook_id)
    if record is None:
        stamp = _stamp(session, now)
        session.add(PlaybookRecord(id=playbook_id, file_managed=True, path=path, error=error, created_at=now,
                                   updated_at=stamp))
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            return False  # another process recorded it at the same moment
        return True
    if not record.file_managed:
        return False  # a file shadowing a playbook made in the bot: the loader reports it
    return _touch(session, record, now, error=error, path=path, missing=False)


def mark_missing(session: Session, playbook_id: str, now: int) -> bool:
    """A file-managed playbook's file was removed: kept, with its runs and versions, but starts no runs."""
    record = session.get(PlaybookRecord, playbook_id)
    if record is None or not record.file_managed:
        return False
    return _touch(session, record, now, missing=True)


def file_managed(session: Session) -> list[PlaybookRecord]:
    return list(session.exec(select(PlaybookRecord).where(col(PlaybookRecord.file_managed).is_(True))).all())


def archive(session: Session, playbook_id: str, now: int) -> bool:
    """Archive a playbook: its runs stay, new ones cannot start. False when already archived; raises
    NoSuchPlaybook."""
    record = session.get(PlaybookRecord, playbook_id)
    if record is None:
        raise NoSuchPlaybook(playbook_id)
    return _touch(session, record, now, archived=True)


def restore(session: Session, playbook_id: str, now: int) -> bool:
    """Bring an archived playbook back. False when it was not archived; raises NoSuchPlaybook."""
    record = session.get(PlaybookRecord, playbook_id)
    if record is None:
        raise NoSuchPlaybook(playbook_id)
    return _touch(session, record, now, archived=False)


def duplicate(session: Session, source_id: str, new_playbook_id: str, now: int, *, title: str | None = None,
              author_id: str = "", note: str = "") -> PlaybookVersion:
    """A new playbook `new_playbook_id` whose version 1 copies the current version of `source_id` (with
    `title` in place of its title, if given), source "duplicate", not file-managed. Raises NoSuchPlaybook
    or PlaybookExists."""
    original = current_version(session, source_id)
    if original is None:
        raise NoSuchPlaybook(source_id)
    if session.get(PlaybookRecord, new_playbook_id) is not None:
        raise PlaybookExists(new_playbook_id)
    data = dict(original.data)
    if title is not None:
        data["title"] = title
    note = note or f"duplicate of {source_id} version {original.number}"
    saved = save_version(session, new_playbook_id, data, source="duplicate", now=now, author_id=author_id,
                         note=note)
    if not saved.created or saved.version.number != 1:  # someone made that id at the same moment
        raise PlaybookExists(new_playbook_id)
    return saved.version


def read_playbooks(url: str) -> list[Entry] | None:
    """For `python -m bot check`: every playbook in the database at `url`, or None when there is no
    database or it is not migrated to versions yet. Writes nothing."""
    return read_existing(url, list_playbooks, None)


def read_version(url: str, playbook_id: str, number: int | None = None) -> PlaybookVersion | None:
    """For `python -m bot export-playbook`: a playbook's current version (or the one numbered `number`),
    None when there is none. Writes nothing."""
    def read(session: Session) -> PlaybookVersion | None:
        found = current_version(session, playbook_id) if number is None else version_number(
            session, playbook_id, number)
        if found is not None:
            session.expunge(found)
        return found

    return read_existing(url, read, None)


def version_number(session: Session, playbook_id: str, number: int) -> PlaybookVersion | None:
    return session.exec(select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook_id,
                                                      PlaybookVersion.number == number)).first()
