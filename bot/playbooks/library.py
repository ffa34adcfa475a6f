"""The playbooks a bot process runs: the current versions from the database, files as code, and each
run's own version.

- **Files as code.** Every valid `[playbooks] dir/<id>.toml` becomes a new version of playbook `<id>` when
  its content changed (source "file", its path, and its git commit when the folder is in a git checkout
  and the file has no uncommitted change). The folder is looked at at start-up and then every `interval_s`
  (2 s): a file's size and mtime first, its bytes only when they moved. A broken file leaves the last good
  version current; its problems go on the playbook's row (`bot check`, the editor) and into the log, once
  per change. A removed file marks its playbook missing: kept, with its runs and versions, but no new
  runs, until the file is back.
- **The current set.** `current` holds every playbook that may start runs (not archived, not missing,
  with a valid version), re-read whenever `storage.playbooks.marker()` moves, so a change made by another
  bot process (or the editor) is seen within one interval. Several processes watching the same folder
  converge: a save of the content that is current already writes nothing.
- **A run's own playbook.** `for_run(run)` is the version the run started from (versions never change, so
  they are cached by id); runs older than versions fall back to the playbook's current version.

Tests call `check_now()` instead of waiting for the interval.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from bot.clock import Clock
from bot.playbooks.errors import PlaybookError, PlaybookInvalid
from bot.playbooks.loader import check_file_name, parse_playbook_file
from bot.playbooks.model import Playbook
from bot.playbooks.validation import parse_playbook
from storage import playbooks as store
from storage.db import Database
from storage.models import PlaybookVersion

log = logging.getLogger(__name__)

POLL_S = 2.0
VERSION_CACHE = 512  # parsed versions kept by id
GIT_TIMEOUT_S = 5.0


class RunRef(Protocol):
    """What `for_run` needs of a run (a storage Run, a RunStart...)."""

    @property
    def playbook_id(self) -> str: ...

    @property
    def playbook_version_id(self) -> str | None: ...


@dataclass(frozen=True)
class _Seen:
    """What this process last saw of one file."""

    stamp: tuple[int, int]  # (mtime_ns, size)
    digest: str  # sha256 of its bytes
    errors: tuple[PlaybookError, ...] = ()


@dataclass(frozen=True)
class _Read:
    path: Path
    stamp: tuple[int, int]
    digest: str
    data: dict[str, Any] | None
    errors: tuple[PlaybookError, ...]
    playbook_id: str  # "" when the file name is not a playbook id


class PlaybookLibrary:
    """The current playbooks, kept in step with the database and the playbooks folder (a `Job`)."""

    def __init__(self, db: Database, clock: Clock, directory: Path | None, *, interval_s: float = POLL_S,
                 git: bool = True) -> None:
        self.db = db
        self.clock = clock
        self.directory = directory
        self.interval_s = interval_s
        self.git = git
        self.current: dict[str, Playbook] = {}
        self.errors: list[PlaybookError] = []  # this folder's problems, as of the last look
        self.listeners: list[Callable[[PlaybookLibrary], None]] = []  # told when `current` or `errors` change
        self._seen: dict[Path, _Seen] = {}
        self._folder_errors: list[PlaybookError] = []
        self._marker: tuple[int, int] | None = None
        self._versions: OrderedDict[str, Playbook] = OrderedDict()
        self._bad_versions: set[str] = set()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- the job -------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="playbooks-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check_now()
            except Exception:  # noqa: BLE001 - the next look tries again
                log.exception("looking at the playbooks failed; trying again in %.0f s", self.interval_s)

    async def check_now(self) -> bool:
        """Look at the folder and the database now; whether the current set or the errors changed."""
        async with self._lock:
            errors_before = list(self.errors)
            await self._sync_files()
            changed = await self._refresh()
            changed = changed or self.errors != errors_before
        if changed:
            for listener in self.listeners:
                listener(self)
        return changed

    # -- files -> versions ---------------------------------------------------------------------------

    async def _sync_files(self) -> None:
        directory = self.directory
        if directory is None:
            return
        listing = await asyncio.to_thread(_list, directory)
        if listing is None:
            # A folder that is gone (unmounted, mistyped) marks nothing missing: it may be back.
            what = "is not a folder" if directory.exists() else "folder not found"
            self._folder_errors = [PlaybookError(directory, "", f"{what}; set [playbooks] dir in bot.toml")]
            self.errors = list(self._folder_errors)
            return
        self._folder_errors = []
        moved = {path: stamp for path, stamp in listing.items()
                 if path not in self._seen or self._seen[path].stamp != stamp}
        gone = [path for path in self._seen if path not in listing]
        for path in gone:
            del self._seen[path]
        if moved:
            for read in await asyncio.to_thread(_read_all, list(moved)):
                before = self._seen.get(read.path)
                if before is not None and before.digest == read.digest:
                    self._seen[read.path] = replace(before, stamp=read.stamp)  # touched, not changed
                    continue
                errors = await self._store(read)
                self._seen[read.path] = _Seen(read.stamp, read.digest, errors)
        if gone or moved:
            await self._mark_missing(directory, {p.stem for p in listing})
        self.errors = [e for seen in self._seen.values() for e in seen.errors]

    async def _store(self, read: _Read) -> tuple[PlaybookError, ...]:
        """A new or changed file: a new version when valid, its problems recorded when not."""
        now = self.clock.now_ms()
        if read.data is None:
            for err in read.errors:
                log.error("playbook file not loaded (the last good version stays current): %s", err)
            if read.playbook_id:
                text = "\n".join(str(e) for e in read.errors)
                await self.db.run(store.record_file_error, read.playbook_id, str(read.path), text, now)
            return read.errors
        commit = await git_commit(read.path) if self.git else ""
        try:
            saved = await self.db.run(functools.partial(store.save_version, source="file", now=now,
                                                        source_path=str(read.path), source_commit=commit),
                                      read.playbook_id, read.data)
        except store.PlaybookExists:
            err = PlaybookError(read.path, "", f'a playbook "{read.playbook_id}" made in the bot has this id; '
                                               "rename the file")
            log.error("playbook file not loaded: %s", err)
            return (err,)
        if saved.created:
            log.info("playbook %s: version %d from %s%s", read.playbook_id, saved.version.number, read.path,
                     f" (commit {commit[:12]})" if commit else "")
        return ()

    async def _mark_missing(self, directory: Path, present: set[str]) -> None:
        now = self.clock.now_ms()
        for record in await self.db.run(store.file_managed, readonly=True):
            if record.missing or record.id in present or Path(record.path).parent != directory:
                continue
            if await self.db.run(store.mark_missing, record.id, now):
                log.warning("playbook %s: its file %s was removed; it is kept (with its runs) but starts no "
                            "new runs until the file is back", record.id, record.path)

    # -- database -> current ---------------------------------------------------------------------------

    async def _refresh(self) -> bool:
        marker = await self.db.run(store.marker, readonly=True)
        if marker == self._marker:
            return False
        entries = await self.db.run(store.list_playbooks, readonly=True)
        current: dict[str, Playbook] = {}
        for entry in entries:
            if entry.runnable and entry.version is not None:
                playbook = self._parse(entry.version, entry.record.path if entry.record.file_managed else "")
                if playbook is not None:
                    current[playbook.id] = playbook
        self._marker = marker
        if current == self.current and [p.version_id for p in current.values()] == \
                [p.version_id for p in self.current.values()]:
            return False
        self.current = current
        return True

    def _parse(self, version: PlaybookVersion, path: str = "") -> Playbook | None:
        cached = self._versions.get(version.id)
        if cached is not None:
            self._versions.move_to_end(version.id)
            return cached
        where = Path(path or version.source_path or f"{version.playbook_id} (version {version.number})")
        try:
            playbook = parse_playbook(version.data, playbook_id=version.playbook_id, path=where)
        except PlaybookInvalid as exc:
            if version.id not in self._bad_versions:
                self._bad_versions.add(version.id)
                log.error("playbook %s version %d no longer validates: %s", version.playbook_id, version.number,
                          exc)
            return None
        playbook = replace(playbook, path=Path(path or version.source_path) if (path or version.source_path)
                           else None, version_id=version.id, version=version.number)
        self._versions[version.id] = playbook
        while len(self._versions) > VERSION_CACHE:
            self._versions.popitem(last=False)
        return playbook

    async def version(self, version_id: str) -> Playbook | None:
        """The playbook as stored in that version (None if there is no such version)."""
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        row = await self.db.run(store.get_version, version_id, readonly=True)
        return self._parse(row) if row is not None else None

    async def for_run(self, run: RunRef) -> Playbook | None:
        """The playbook version a run started from; for a run older than versions, the current one."""
        if run.playbook_version_id:
            found = await self.version(run.playbook_version_id)
            if found is not None:
                return found
        if run.playbook_id in self.current:
            return self.current[run.playbook_id]
        return await self.stored_current(run.playbook_id)

    async def stored_current(self, playbook_id: str) -> Playbook | None:
        """The playbook's current version in the database, even when archived or its file is removed."""
        row = await self.db.run(store.current_version, playbook_id, readonly=True)
        return self._parse(row) if row is not None else None


def _list(directory: Path) -> dict[Path, tuple[int, int]] | None:
    """The folder's playbook files with their (mtime_ns, size); None when the folder is not there."""
    if not directory.is_dir():
        return None
    out: dict[Path, tuple[int, int]] = {}
    for path in sorted(directory.glob("*.toml")):
        if path.name.startswith("."):
            continue
        try:
            st = path.stat()
        except OSError:
            continue  # removed while listing
        if path.is_file():
            out[path] = (st.st_mtime_ns, st.st_size)
    return out


def _read_all(paths: list[Path]) -> list[_Read]:
    out = []
    for path in paths:
        try:
            st = path.stat()
            raw = path.read_bytes()
        except OSError as exc:
            err = PlaybookError(path, "", f"cannot read the file ({exc.strerror or exc})")
            out.append(_Read(path, (0, 0), "", None, (err,), ""))
            continue
        digest = hashlib.sha256(raw).hexdigest()
        stamp = (st.st_mtime_ns, st.st_size)
        try:
            data, playbook = parse_playbook_file(path, raw)
        except PlaybookInvalid as exc:
            try:
                pid = check_file_name(path)
            except PlaybookInvalid:
                pid = ""
            out.append(_Read(path, stamp, digest, None, exc.errors, pid))
            continue
        out.append(_Read(path, stamp, digest, data, (), playbook.id))
    return out


async def git_commit(path: Path) -> str:
    """The git commit that last changed the file, when its folder is in a git checkout and the file has no
    uncommitted change (otherwise, or without git, "")."""
    async def git(*args: str) -> str | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                "git", "-C", str(path.parent), *args, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL)
        except OSError:
            return None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return None
        return out.decode("utf-8", "replace").strip() if proc.returncode == 0 else None

    commit, status = await asyncio.gather(git("log", "-1", "--format=%H", "--", path.name),
                                          git("status", "--porcelain", "--", path.name))
    if not commit or status is None or status:
        return ""
    return commit
