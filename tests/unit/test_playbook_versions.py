"""storage/playbooks.py: versions, the current one, archive/restore/duplicate, files' errors, and two
processes saving at once (SQLite and PostgreSQL, tests/pg.py)."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import playbooks as store
from storage.db import session_scope
from storage.models import PlaybookVersion

pytest_plugins = ["tests.pg"]

NOW = 1_767_225_600_000
DATA: dict[str, Any] = {"title": "Incident", "checklists": [{"title": "Triage", "items": [{"title": "Page"}]}]}


def edited(title: str) -> dict[str, Any]:
    return {**DATA, "checklists": [{"title": "Triage", "items": [{"title": title}]}]}


def save(s: Session, pid: str, data: dict[str, Any], source: str = "editor", now: int = NOW,
         **kw: Any) -> store.Saved:
    return store.save_version(s, pid, data, source=source, now=now, **kw)


def test_each_save_is_a_new_numbered_version_and_the_same_content_is_none(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        first = save(s, "incident", DATA, author_id="a" * 26, note="first")
        again = save(s, "incident", dict(DATA))
        second = save(s, "incident", edited("Call"), now=NOW + 5)
    assert (first.created, first.version.number) == (True, 1)
    assert (again.created, again.version.id) == (False, first.version.id)
    assert (second.created, second.version.number) == (True, 2)
    with session_scope(db_engine, readonly=True) as s:
        assert store.current_version(s, "incident").id == second.version.id  # type: ignore[union-attr]
        assert [v.number for v in store.list_versions(s, "incident")] == [2, 1]
        old = store.get_version(s, first.version.id)
        assert old is not None and old.data == DATA and old.note == "first" and old.author_id == "a" * 26
        assert store.get_version(s, "x" * 26) is None
        assert store.current_version(s, "nothing") is None


def test_the_content_hash_ignores_key_order() -> None:
    assert store.content_hash({"a": 1, "b": [1, 2]}) == store.content_hash({"b": [1, 2], "a": 1})
    assert store.content_hash({"a": 1}) != store.content_hash({"a": 2})


def test_the_marker_moves_with_every_change_even_with_a_clock_behind(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        empty = store.marker(s)
        save(s, "incident", DATA, now=NOW)
        one = store.marker(s)
        store.archive(s, "incident", NOW - 60_000)  # another process whose clock is a minute behind
        two = store.marker(s)
        save(s, "incident", DATA, now=NOW)  # nothing changed: the marker stays
        three = store.marker(s)
    assert empty == (0, 0) and one[1] == 1 and two[0] > one[0] and three == two


def test_archive_restore_and_runnable(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        save(s, "incident", DATA)
        assert store.archive(s, "incident", NOW) and not store.archive(s, "incident", NOW)
        entry = store.list_playbooks(s)[0]
        assert entry.record.archived and not entry.runnable
        assert store.list_playbooks(s, include_archived=False) == []
        assert store.restore(s, "incident", NOW) and not store.restore(s, "incident", NOW)
        assert store.list_playbooks(s)[0].runnable
        with pytest.raises(store.NoSuchPlaybook):
            store.archive(s, "nothing", NOW)
        with pytest.raises(store.NoSuchPlaybook):
            store.restore(s, "nothing", NOW)


def test_duplicate_copies_the_current_version_as_a_new_playbook(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        save(s, "incident", DATA, source="file", source_path="/p/incident.toml")
        save(s, "incident", edited("Call"), source="file", source_path="/p/incident.toml")
        copy = store.duplicate(s, "incident", "incident-eu", NOW, title="Copy of Incident", author_id="b" * 26)
        assert (copy.playbook_id, copy.number, copy.source) == ("incident-eu", 1, "duplicate")
        assert copy.data == {**edited("Call"), "title": "Copy of Incident"}
        assert "incident version 2" in copy.note
        record = store.get_playbook(s, "incident-eu")
        assert record is not None and not record.file_managed  # a copy to edit
        save(s, "incident-eu", edited("Call the EU desk"))  # the editor may change it
        with pytest.raises(store.PlaybookExists):
            store.duplicate(s, "incident", "incident-eu", NOW)
        with pytest.raises(store.NoSuchPlaybook):
            store.duplicate(s, "nothing", "other", NOW)


def test_a_file_managed_playbook_takes_versions_only_from_its_file(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        save(s, "incident", DATA, source="file", source_path="/p/incident.toml", source_commit="c" * 40)
        with pytest.raises(store.FileManaged):
            save(s, "incident", edited("x"), source="editor")
        save(s, "made-here", DATA, source="editor")
        with pytest.raises(store.PlaybookExists):
            save(s, "made-here", DATA, source="file", source_path="/p/made-here.toml")
        assert store.current_version(s, "incident").source_commit == "c" * 40  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        with session_scope(db_engine) as s:
            save(s, "x", DATA, source="wiki")


def test_a_broken_file_keeps_the_last_good_version_and_a_removed_one_is_missing(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        good = save(s, "incident", DATA, source="file", source_path="/p/incident.toml").version
        assert store.record_file_error(s, "incident", "/p/incident.toml", "title: required", NOW)
        assert not store.record_file_error(s, "incident", "/p/incident.toml", "title: required", NOW)
        entry = store.list_playbooks(s)[0]
        assert entry.version.id == good.id and entry.record.error == "title: required"  # type: ignore[union-attr]
        assert entry.runnable
        save(s, "incident", DATA, source="file", source_path="/p/incident.toml")  # fixed back: no new version
        entry = store.list_playbooks(s)[0]
        assert entry.record.error == "" and entry.version.number == 1  # type: ignore[union-attr]
        assert store.mark_missing(s, "incident", NOW) and not store.mark_missing(s, "incident", NOW)
        assert not store.list_playbooks(s)[0].runnable
        save(s, "incident", DATA, source="file", source_path="/p/incident.toml")  # the file is back
        assert store.list_playbooks(s)[0].runnable
        # A new file that was never valid: a row without a version, its problems kept.
        assert store.record_file_error(s, "fresh", "/p/fresh.toml", "invalid TOML", NOW)
        fresh = store.get_playbook(s, "fresh")
        assert fresh is not None and fresh.current_version_id is None and fresh.file_managed
        assert [e.record.id for e in store.list_playbooks(s) if e.runnable] == ["incident"]
        assert {r.id for r in store.file_managed(s)} == {"incident", "fresh"}


@pytest.mark.parametrize("same", [True, False], ids=["same content", "different content"])
def test_two_processes_saving_at_once_agree(db_engine: Engine, same: bool) -> None:
    """Two bot processes see one file change at the same moment: the same content makes one version; two
    different saves make two, numbered without a gap, neither failing."""
    with session_scope(db_engine) as s:
        save(s, "incident", DATA, source="file", source_path="/p/incident.toml")
    barrier = threading.Barrier(2)
    results: list[store.Saved] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with session_scope(db_engine) as s:
                barrier.wait(5)
                data = edited("Call") if same else edited(f"Call {n}")
                results.append(save(s, "incident", data, source="file", source_path="/p/incident.toml"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not errors, errors
    with session_scope(db_engine, readonly=True) as s:
        numbers = sorted(v.number for v in store.list_versions(s, "incident"))
        current = store.current_version(s, "incident")
    assert numbers == ([1, 2] if same else [1, 2, 3])
    assert current is not None and current.number == numbers[-1]
    assert sum(r.created for r in results) == (1 if same else 2)


def test_two_processes_creating_a_playbook_at_once_agree(db_engine: Engine) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with session_scope(db_engine) as s:
                barrier.wait(5)
                save(s, "incident", DATA, source="file", source_path="/p/incident.toml")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not errors, errors
    with session_scope(db_engine, readonly=True) as s:
        assert [v.number for v in store.list_versions(s, "incident")] == [1]


def test_read_playbooks_for_bot_check_creates_nothing(tmp_path: Any, db_engine: Engine) -> None:
    missing = tmp_path / "none" / "bot.db"
    assert store.read_playbooks(f"sqlite:///{missing}") is None
    assert not missing.parent.exists()
    with session_scope(db_engine) as s:
        save(s, "incident", DATA)
    entries = store.read_playbooks(db_engine.url.render_as_string(hide_password=False))
    assert entries is not None and [e.record.id for e in entries] == ["incident"]
    assert isinstance(entries[0].version, PlaybookVersion)
