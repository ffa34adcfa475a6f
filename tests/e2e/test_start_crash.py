"""A run start cut by SIGKILL at each of its steps, with real processes: the bot (`python -m bot run`) kills
itself at a named point (test-only `[testing] crash_at`), a new one is started on the same database, and
nobody touches anything. Within 30 s of the restart the run is complete, every post made exactly once and
equal to its rows, nobody left out, and the starter told; or, for a start that had to be rolled back, its
channel archived and the starter told why.

"<step>:sent" points are the hard ones: Mattermost did the step (the channel exists, the post is made)
and nothing was recorded, so the restarted bot must find it (the channel by its recorded name, a post by
its props marker) instead of doing it twice. The sandbox runs in the test process, on the real clock:
the restarted bot sees that the dead process's lease is free at once (same machine, no such pid) and
takes the start up at start-up. Nothing sleeps: the test waits for the starter's WebSocket event.

The cases share one sandbox, database and chain of bot processes (a process start costs seconds): the
bot restarted after case k's crash is the one that case k+1 crashes, armed for case k+1's run only
(`crash_at = "<point>@<run name>"`). Run alone, a case starts its own crashing bot first.
"""
from __future__ import annotations

import asyncio
import json
import signal
import textwrap
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from bot.domain.permissions import Viewer
from bot.playbooks.validation import parse_playbook
from handlers.runs import crash_points
from sandbox.state import State
from storage import runs, starts
from storage.db import make_engine, session_scope
from tests.e2e.conftest import INCIDENT
from tests.e2e.test_process_restart import DEADLINE_S, BotProcess, Site, open_site

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONVERGED_S = 30.0  # complete (or rolled back) and the starter told within this of the restart
MEMBERS_ROUTE = r"/api/v4/channels/[a-z0-9]+/members"


def _incident_points() -> list[str]:
    pb = parse_playbook(tomllib.loads(textwrap.dedent(INCIDENT)), playbook_id="incident", path="incident.toml")
    return crash_points(pb)


# (crash point, whether adding the owner is refused for good so that the start is rolled back)
CASES = [(point, False) for point in _incident_points()] + [
    ("failing", True), ("rollback:sent", True), ("rollback:told", True)]


def run_name(index: int) -> str:
    return f"Outage {index + 1}"


def armed(index: int) -> str:
    point, _ = CASES[index]
    return f"{point}@{run_name(index)}"


@dataclass
class Chain:
    site: Site
    storage_url: str
    bot: BotProcess | None = None
    armed_for: str = ""
    spawned: int = 0

    def process(self, crash_at: str) -> BotProcess:
        """A bot process on the real clock (no clock file): leases and backoffs run on wall time."""
        self.spawned += 1
        proc = self.site.bot(f"bot-{self.spawned}", self.storage_url)
        env = {k: v for k, v in proc.env.items() if k != "BOT_TESTING_CLOCK_FILE"}
        if crash_at:
            env["BOT_TESTING_CRASH_AT"] = crash_at
        return BotProcess(env, proc.log_path)

    async def ensure(self, crash_at: str) -> BotProcess:
        if self.bot is not None and self.armed_for == crash_at and self.bot.proc and self.bot.proc.returncode is None:
            return self.bot
        if self.bot is not None:
            await self.bot.stop()
        self.bot = await self.process(crash_at).start()
        self.armed_for = crash_at
        return self.bot

    async def restart(self, crash_at: str) -> BotProcess:
        self.bot = await self.process(crash_at).start()
        self.armed_for = crash_at
        return self.bot


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chain]:
    tmp = tmp_path_factory.mktemp("start-crash")
    async with open_site(tmp) as site:
        c = Chain(site, f"sqlite:///{tmp}/bot.db")
        try:
            yield c
        finally:
            if c.bot is not None:
                await c.bot.stop()
        engine = make_engine(c.storage_url)
        try:
            with session_scope(engine, readonly=True) as session:
                left = [(s.name, s.state, s.step) for s in starts.unfinished(session)]
        finally:
            engine.dispose()
        assert not left, f"starts left unfinished: {left}"


def _told(site: Site, seen: int, name: str) -> list[str]:
    return [t for t in site.alice.ephemerals()[seen:] if f"**{name}**" in t
            and ("has started" in t or "could not be started" in t)]


@pytest.mark.parametrize(("index", "point", "refused"), [(i, p, r) for i, (p, r) in enumerate(CASES)],
                         ids=[p for p, _ in CASES])
async def test_a_start_killed_at_each_step_converges_within_30s_of_the_restart(
        chain: Chain, index: int, point: str, refused: bool) -> None:
    site, name = chain.site, run_name(index)
    bot = await chain.ensure(armed(index))
    if refused:  # the starter cannot be added (for good): the start is rolled back
        site.sb.fail("POST", MEMBERS_ROUTE, status=403, times=1)
    seen = len(site.alice.ephemerals())
    status, body = await site.alice.command(site.town_square, f"/playbook run incident {name}")
    # Killed before its answer went out ("begin"), the slash command fails in Mattermost; the start
    # was recorded all the same.
    assert status == 200 or point == "begin", body
    assert bot.proc is not None
    code = await asyncio.wait_for(bot.proc.wait(), DEADLINE_S)
    assert code == -signal.SIGKILL, bot.log_tail()
    assert not _told(site, seen, name) or point in ("told:sent", "told", "rollback:told")

    started = time.monotonic()
    nxt = armed(index + 1) if index + 1 < len(CASES) else ""
    after = await chain.restart(nxt)
    try:
        await site.alice.wait_event(lambda e: bool(_told(site, seen, name)), timeout=CONVERGED_S)
    except asyncio.TimeoutError:
        raise AssertionError(f"not converged {CONVERGED_S} s after the restart:\n{after.log_tail()}") from None
    assert time.monotonic() - started < CONVERGED_S
    told = _told(site, seen, name)
    if refused:
        assert all("could not be started" in t for t in told), told
        check_rolled_back(chain, name)
    else:
        assert all("has started" in t for t in told), told
        check_complete(chain, name)


def _stored(chain: Chain, name: str) -> tuple[Any, Any]:
    engine = make_engine(chain.storage_url)
    try:
        with session_scope(engine, readonly=True) as session:
            [start] = [s for s in _all_starts(session) if s.name == name]
            return start, runs.load_view(session, start.run_id)
    finally:
        engine.dispose()


def _all_starts(session: Any) -> list[Any]:
    from sqlmodel import select

    from storage.models import RunStart

    return list(session.exec(select(RunStart)))


def check_complete(chain: Chain, name: str) -> None:
    """The run as stored and as Mattermost shows it are one: complete, each post once, nobody left out."""
    site, state = chain.site, chain.site.sb.state
    start, view = _stored(chain, name)
    assert view is not None and view.run.status == "in_progress"
    # The starter was told; the record of it follows that by a moment.
    assert start.completed and start.state in ("done", "starting"), (start.state, start.step)
    engine = make_engine(chain.storage_url)
    try:
        with session_scope(engine, readonly=True) as session:
            listed = [r.id for r in runs.visible_runs(session, Viewer("", is_admin=True), statuses=["in_progress"])[0]]
    finally:
        engine.dispose()
    assert view.run.id in listed
    run = view.run
    channels = [c for c in state.channels.values() if c.display_name.endswith(f" {name}")]
    assert [c.id for c in channels] == [run.channel_id], [(c.name, c.delete_at) for c in channels]
    assert not channels[0].delete_at
    people = {u.username: u.id for u in state.users.values()}
    members = {uid for (cid, uid) in state.channel_members if cid == run.channel_id}
    assert {people["alice"], people["bob"], people["carol"]} <= members
    assert set(view.participant_ids) >= {people["alice"], people["bob"], people["carol"]}
    assert "channel_admin" in state.channel_members[(run.channel_id, people["alice"])].roles.split()
    bot_posts = _bot_posts(state, site, run.channel_id)
    overview = [p for p in bot_posts if name in p.message and "Incident response" in p.message]
    assert [p.id for p in overview] == [run.overview_post_id], [p.message[:40] for p in bot_posts]
    for checklist, _ in view.checklists:
        shown = [p for p in bot_posts if checklist.title in p.message.splitlines()[0]]
        assert [p.id for p in shown] == [checklist.post_id], (checklist.title, [p.message[:40] for p in bot_posts])
    assert sum(1 for p in bot_posts if "Read the runbook first." in p.message) == 1
    assert "0/5" in json.dumps(state.posts[run.overview_post_id].props)
    town = _bot_posts(state, site, site.town_square)
    assert sum(1 for p in town if f"**{name}**" in p.message) == 1
    filed = [c for c in state.categories.get((people["alice"], site.team_id), []) if c.display_name == "Incidents"]
    assert len(filed) == 1 and run.channel_id in filed[0].channel_ids


def check_rolled_back(chain: Chain, name: str) -> None:
    """Nothing left: the channel archived again, the run failed and in no list, no broadcast."""
    site, state = chain.site, chain.site.sb.state
    start, view = _stored(chain, name)
    assert start.state in ("failed", "rolling_back") and view is not None and view.run.status == "failed"
    channels = [c for c in state.channels.values() if c.display_name.endswith(f" {name}")]
    assert len(channels) == 1 and channels[0].delete_at, [(c.name, c.delete_at) for c in channels]
    assert not any(f"**{name}**" in p.message for p in _bot_posts(state, site, site.town_square))


def _bot_posts(state: State, site: Site, channel_id: str) -> list[Any]:
    return [p for pid in state.channel_posts.get(channel_id, []) if (p := state.posts[pid]).user_id == site.bot_id
            and not p.type and not p.delete_at]
