"""bot/playbooks/library.py: playbook files become versions, watched without a restart; a broken edit keeps
the last good version; a removed file stops new runs; a run keeps its version; processes converge."""
from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.clock import FakeClock
from bot.playbooks.library import PlaybookLibrary, git_commit
from storage import playbooks as store
from storage.db import Database, make_engine, migrate

GOOD = 'title = "Incident"\n[[checklists]]\ntitle = "Triage"\n[[checklists.items]]\ntitle = "Page on-call"\n'
EDITED = GOOD.replace("Page on-call", "Call the incident commander")
BROKEN = 'title = "Incident"\n[[checklists]]\ntitle = 3\n'


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    migrate(engine)
    database = Database(engine)
    yield database
    await database.close()


def write(path: Path, text: str) -> None:
    """Write and move the mtime on, as a later edit would (file systems with coarse mtimes)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def library(db: Database, folder: Path) -> PlaybookLibrary:
    return PlaybookLibrary(db, FakeClock(), folder, git=False)


def items(lib: PlaybookLibrary, pid: str = "incident") -> list[str]:
    return [i.title for c in lib.current[pid].checklists for i in c.items]


async def test_a_file_edit_is_a_new_version_and_a_run_keeps_its_own(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    write(folder / "incident.toml", GOOD)
    lib = library(db, folder)
    assert await lib.check_now()
    first = lib.current["incident"]
    assert (first.version, items(lib), first.path) == (1, ["Page on-call"], folder / "incident.toml")
    assert not await lib.check_now()  # nothing moved: nothing to do
    run = SimpleNamespace(playbook_id="incident", playbook_version_id=first.version_id)

    write(folder / "incident.toml", EDITED)
    assert await lib.check_now()
    assert (lib.current["incident"].version, items(lib)) == (2, ["Call the incident commander"])
    kept = await lib.for_run(run)
    assert kept is not None and kept.version == 1 and kept.checklists[0].items[0].title == "Page on-call"
    old = await lib.for_run(SimpleNamespace(playbook_id="incident", playbook_version_id=None))
    assert old is not None and old.version == 2  # a run older than versions: the current one

    os.utime(folder / "incident.toml")  # touched, not changed: no version
    await lib.check_now()
    versions = await db.run(store.list_versions, "incident")
    assert [(v.number, v.source, v.source_path) for v in versions] == [
        (2, "file", str(folder / "incident.toml")), (1, "file", str(folder / "incident.toml"))]


async def test_a_broken_edit_keeps_the_last_good_version_and_says_why(db: Database, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    write(folder / "incident.toml", GOOD)
    lib = library(db, folder)
    await lib.check_now()
    write(folder / "incident.toml", BROKEN)
    assert await lib.check_now()  # the errors changed
    assert lib.current["incident"].version == 1 and items(lib) == ["Page on-call"]
    assert [str(e) for e in lib.errors] == [f"{folder / 'incident.toml'}: checklists[1].title: "
                                            "expected a string, got the number 3"]
    record = await db.run(store.get_playbook, "incident")
    assert record is not None and "checklists[1].title" in record.error
    logged = [r for r in caplog.records if "checklists[1].title" in r.getMessage()]
    await lib.check_now()
    os.utime(folder / "incident.toml")
    await lib.check_now()
    assert len([r for r in caplog.records if "checklists[1].title" in r.getMessage()]) == len(logged) == 1

    write(folder / "incident.toml", EDITED)
    await lib.check_now()
    assert lib.errors == [] and lib.current["incident"].version == 2
    record = await db.run(store.get_playbook, "incident")
    assert record is not None and record.error == ""


async def test_a_new_broken_file_and_a_badly_named_one_are_reported(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    write(folder / "broken.toml", BROKEN)
    write(folder / "Bad Name.toml", GOOD)
    lib = library(db, folder)
    await lib.check_now()
    assert lib.current == {}
    assert {e.path.name for e in lib.errors} == {"broken.toml", "Bad Name.toml"}
    record = await db.run(store.get_playbook, "broken")
    assert record is not None and record.current_version_id is None and record.error


async def test_a_removed_file_starts_no_runs_until_it_is_back(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    write(folder / "incident.toml", GOOD)
    write(folder / "onboarding.toml", GOOD.replace("Incident", "Onboarding"))
    lib = library(db, folder)
    await lib.check_now()
    version_id = lib.current["incident"].version_id
    (folder / "incident.toml").unlink()
    assert await lib.check_now()
    assert set(lib.current) == {"onboarding"}
    record = await db.run(store.get_playbook, "incident")
    assert record is not None and record.missing
    # Its runs still read their version.
    kept = await lib.for_run(SimpleNamespace(playbook_id="incident", playbook_version_id=version_id))
    assert kept is not None and kept.title == "Incident"
    write(folder / "incident.toml", GOOD)
    await lib.check_now()
    assert set(lib.current) == {"incident", "onboarding"} and lib.current["incident"].version == 1


async def test_a_folder_that_is_gone_marks_nothing_missing(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    write(folder / "incident.toml", GOOD)
    lib = library(db, folder)
    await lib.check_now()
    (folder / "incident.toml").rename(tmp_path / "incident.toml")
    folder.rmdir()
    await lib.check_now()
    assert "incident" in lib.current and "folder not found" in str(lib.errors[0])


async def test_archived_playbooks_leave_the_current_set_and_another_library_sees_it(db: Database,
                                                                                    tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    write(folder / "incident.toml", GOOD)
    one, two = library(db, folder), library(db, folder)
    await one.check_now()
    await two.check_now()
    assert one.current["incident"].version_id == two.current["incident"].version_id
    seen: list[int] = []
    two.listeners.append(lambda lib: seen.append(len(lib.current)))
    await db.run(store.archive, "incident", 1)
    assert await two.check_now() and "incident" not in two.current and seen == [0]
    await db.run(store.restore, "incident", 2)
    await two.check_now()
    assert "incident" in two.current


async def test_two_processes_on_one_folder_converge_on_one_version(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    write(folder / "incident.toml", GOOD)
    one, two = library(db, folder), library(db, folder)
    await one.check_now()
    await two.check_now()
    write(folder / "incident.toml", EDITED)
    await two.check_now()
    await one.check_now()
    versions = await db.run(store.list_versions, "incident")
    assert [v.number for v in versions] == [2, 1]
    assert one.current["incident"].version_id == two.current["incident"].version_id == versions[0].id


def make_repo(folder: Path) -> str:
    """A git checkout holding incident.toml, committed; its commit."""
    folder.mkdir()
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    write(folder / "incident.toml", GOOD)
    subprocess.run([*git, "add", "incident.toml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "incident"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


async def test_the_git_commit_of_a_file_is_recorded(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    head = make_repo(folder)
    assert await git_commit(folder / "incident.toml") == head
    lib = PlaybookLibrary(db, FakeClock(), folder)
    await lib.check_now()
    current = await db.run(store.current_version, "incident")
    assert current is not None and current.source_commit == head
    write(folder / "incident.toml", EDITED)  # not committed: the commit does not hold this content
    assert await git_commit(folder / "incident.toml") == ""
    assert await git_commit(tmp_path / "elsewhere.toml") == ""  # not a checkout
