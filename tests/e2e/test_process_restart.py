"""The bot as real OS processes (`python -m bot run`): killed with SIGKILL, restarted, and two at once on
one PostgreSQL. Reminders are posted once: late after a crash, never twice.

The sandbox runs in the test process; each bot is a subprocess configured through BOT_* variables. Time
is not slept: the bots read "now" from a file (test-only `[testing] clock_file`, bot.clock.FileClock)
that the test rewrites, and SIGUSR1 makes a bot post what is due now and print
"reminders due now: N posted" once that round, and every round before it, is done. That line is the
barrier after which the test counts posts. Waiting for a process (its start, its answer) is bounded.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from sandbox import Sandbox
from sandbox.validation import assert_no_violations
from tests.conftest import Api, sandbox_config
from tests.e2e.conftest import INCIDENT, Person, make_user

pytest_plugins = ["tests.pg"]

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000  # ms
INTERVAL = 30 * MIN  # the incident playbook's status update interval
DEADLINE_S = 20.0  # for a bot process to start or answer; generous for a loaded CI machine


class BotProcess:
    """One `python -m bot run`; stdout is read line by line, stderr (the log) goes to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> "BotProcess":
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                # Configured by BOT_* alone: run where there is no bot.toml, with the project importable.
                sys.executable, "-m", "bot", "run", cwd=self.log_path.parent,
                env={**self.env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE, stderr=log)
        line = await self._line("bot listening on ")
        self.url = line.split("bot listening on ", 1)[1].split(";", 1)[0]
        return self

    async def _line(self, prefix: str) -> str:
        assert self.proc is not None and self.proc.stdout is not None

        async def read() -> str:
            while True:
                raw = await self.proc.stdout.readline()  # type: ignore[union-attr]
                if not raw:
                    raise AssertionError(f"bot exited ({await self.proc.wait()}) before printing {prefix!r}:\n"  # type: ignore[union-attr]
                                         + self.log_tail())
                if raw.decode().startswith(prefix):
                    return raw.decode().strip()

        try:
            return await asyncio.wait_for(read(), DEADLINE_S)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {prefix!r} from the bot within {DEADLINE_S} s:\n{self.log_tail()}") from None

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    async def due_now(self) -> int:
        """SIGUSR1, then the bot's answer: how many reminders that round posted."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)
        line = await self._line("reminders due now: ")
        return int(line.split()[3])

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown code runs
        assert await asyncio.wait_for(self.proc.wait(), DEADLINE_S) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), DEADLINE_S)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@dataclass
class Site:
    """A sandbox with a team, people and a bot account, and a way to start bot processes against it."""

    sb: Sandbox
    tmp: Path
    team_id: str
    town_square: str
    alice: Person
    bot_id: str
    bot_token: str
    clock_file: Path

    def set_clock(self, ms: int) -> None:
        tmp = self.clock_file.with_suffix(".new")
        tmp.write_text(str(ms))
        os.replace(tmp, self.clock_file)  # atomic: a bot never reads half a number

    def now(self) -> int:
        return int(self.clock_file.read_text())

    def bot(self, name: str, storage_url: str) -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        env.update({
            "BOT_MATTERMOST_URL": self.sb.url, "BOT_MATTERMOST_TOKEN": self.bot_token,
            "BOT_SERVER_LISTEN": "127.0.0.1:0", "BOT_STORAGE_URL": storage_url,
            "BOT_PLAYBOOKS_DIR": str(self.tmp / "playbooks"), "BOT_TESTING_CLOCK_FILE": str(self.clock_file),
            "BOT_LOGGING_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
        })
        return BotProcess(env, self.tmp / f"{name}.log")

    async def start_run(self, name: str) -> dict[str, Any]:
        """Alice types /playbook run; returns the run once the bot says it has started (reminder armed)."""
        seen = len(self.alice.ephemerals())
        status, body = await self.alice.command(self.town_square, f"/playbook run incident {name}")
        assert status == 200, body
        await self.alice.wait_event(lambda e: len(self.alice.ephemerals()) > seen
                                    and any(f"**{name}** has started" in t for t in self.alice.ephemerals()[seen:]),
                                    timeout=DEADLINE_S)
        status, channels, _ = await self.alice.api.get(f"/users/me/teams/{self.team_id}/channels")
        assert status == 200, channels
        [channel] = [c for c in channels if c["display_name"].endswith(f" {name}")]
        return channel

    async def reminders(self, channel_id: str) -> list[dict[str, Any]]:
        status, body, _ = await self.alice.api.get(f"/channels/{channel_id}/posts?per_page=200")
        assert status == 200, body
        return [p for pid in reversed(body["order"]) if (p := body["posts"][pid])["user_id"] == self.bot_id
                and "status update" in p["message"] and "snooze" in p["message"].lower()]


@asynccontextmanager
async def open_site(tmp_path: Path) -> AsyncIterator[Site]:
    """A sandbox with team eng, alice (listening), bob, carol, an admin bot account and the incident playbook
    (also bench/crash_clicks.py's)."""
    async with Sandbox(admin_token="admintoken", config=sandbox_config(),
                       validate=True, allow_internal="127.0.0.1 localhost") as sb, \
            aiohttp.ClientSession() as session:
        # The bots listen on 127.0.0.1: list it, as an operator would, for Mattermost to call them.
        sb.state.config["AllowedUntrustedInternalConnections"] = "127.0.0.1"
        admin = Api(session, sb.url, sb.admin_token)
        status, team, _ = await admin.post("/teams", {"name": "eng", "display_name": "Engineering", "type": "O"})
        assert status == 201, team
        ids = {}
        for name in ("alice", "bob", "carol"):
            ids[name] = await make_user(admin, team["id"], name)
        status, bot, _ = await admin.post("/bots", {"username": "playbooks", "display_name": "Playbooks"})
        assert status == 201, bot
        await admin.post(f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": bot["user_id"]})
        status, body, _ = await admin.put(f"/users/{bot['user_id']}/roles", {"roles": "system_user system_admin"})
        assert status == 200, body
        status, tok, _ = await admin.post(f"/users/{bot['user_id']}/tokens", {"description": "bot"})
        assert status == 200, tok
        status, town, _ = await admin.get(f"/teams/{team['id']}/channels/name/town-square")
        assert status == 200, town
        (tmp_path / "playbooks").mkdir()
        (tmp_path / "playbooks" / "incident.toml").write_text(textwrap.dedent(INCIDENT))
        uid, token = ids["alice"]
        alice = Person("alice", uid, token, Api(session, sb.url, token))
        await alice.listen(sb.url)
        s = Site(sb, tmp_path, team["id"], town["id"], alice, bot["user_id"], tok["token"], tmp_path / "clock")
        s.set_clock(_wall_ms())
        try:
            yield s
        finally:
            await alice.close()
    assert_no_violations(sb.state)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path) as s:
        yield s


async def test_a_bot_killed_just_before_a_reminder_posts_it_once_late_when_it_comes_back(site: Site) -> None:
    sqlite = f"sqlite:///{site.tmp}/bot.db"
    started = site.now()
    first = await site.bot("first", sqlite).start()
    try:
        channel = await site.start_run("Outage")
        site.set_clock(started + INTERVAL - 1000)  # one second before the reminder is due
        assert await first.due_now() == 0
        await first.kill()
    finally:
        await first.stop()

    site.set_clock(started + INTERVAL + 5 * MIN)  # the bot was down over the due time
    second = await site.bot("second", sqlite).start()  # catches up by itself at start-up: no nudge
    try:
        event = await site.alice.wait_event(
            lambda e: e.get("event") == "posted" and (p := json.loads(e["data"]["post"]))["channel_id"]
            == channel["id"] and p["user_id"] == site.bot_id and "status update" in p["message"],
            timeout=DEADLINE_S)
        assert "5 minutes overdue" in json.loads(event["data"]["post"])["message"] or \
            "5m overdue" in json.loads(event["data"]["post"])["message"]
        assert await second.due_now() == 0  # every round is done: nothing more was due
        assert len(await site.reminders(channel["id"])) == 1
        await second.kill()
    finally:
        await second.stop()

    third = await site.bot("third", sqlite).start()
    try:
        assert await third.due_now() == 0
        assert len(await site.reminders(channel["id"])) == 1  # a restart doubles nothing
        # The next one counts from the late one, not from the missed due time: no burst.
        site.set_clock(started + 2 * INTERVAL + 5 * MIN - 1000)
        assert await third.due_now() == 0
        site.set_clock(started + 2 * INTERVAL + 5 * MIN)
        assert await third.due_now() == 1
        assert len(await site.reminders(channel["id"])) == 2
    finally:
        await third.stop()
    assert third.proc is not None and third.proc.returncode == 0, third.log_tail()


async def test_two_bot_processes_on_one_postgresql_post_every_reminder_exactly_once(site: Site, pg_url: str) -> None:
    runs = 4
    started = site.now()
    bots = [await site.bot("one", pg_url).start(), await site.bot("two", pg_url).start()]
    try:
        channels = [await site.start_run(f"Outage {n}") for n in range(runs)]
        for interval in (1, 2):
            site.set_clock(started + interval * INTERVAL)
            posted = await asyncio.gather(*(b.due_now() for b in bots))  # both wake at the same moment
            assert sum(posted) == runs, posted
            for channel in channels:
                assert len(await site.reminders(channel["id"])) == interval, channel["display_name"]
    finally:
        for b in bots:
            await b.stop()
    assert [b.proc.returncode for b in bots if b.proc] == [0, 0], bots[0].log_tail() + bots[1].log_tail()


def _wall_ms() -> int:
    import time

    return int(time.time() * 1000)
