"""End-to-end world: the sandbox (a faithful Mattermost), the real bot against it, and people.

People act only through Mattermost's API, as the web app does: they type slash commands
(`/api/v4/commands/execute`), click buttons (`/api/v4/posts/{id}/actions/{action_id}`), submit dialogs
(`/api/v4/actions/dialogs/submit`), and read channels, posts and categories back. Nothing sleeps: a
test awaits the HTTP round trip, then drains the bot's follow-up tasks.
"""
from __future__ import annotations

import asyncio
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest

from bot import signin
from bot.app import BotApp
from bot.clock import FakeClock
from bot.config import load_settings
from sandbox import Sandbox
from sandbox.validation import assert_no_violations
from tests.bot_api import BotApi
from tests.conftest import LOOPBACK, Api, sandbox_config

INCIDENT = """
title = "Incident response"
description = "For production incidents."
team = "eng"
private_channel = true
channel_name = "inc-{seq} {name}"
category = "Incidents"
owner = "alice"
members = ["bob", "carol"]
broadcast_channels = ["town-square"]
welcome = "Read the runbook first."

[status_updates]
enabled = true
interval = "30m"
template = "**Impact:**\\n**Next steps:**"

[retrospective]
enabled = true
template = "## What happened"
reminder = "24h"

[[checklists]]
title = "Triage"
  [[checklists.items]]
  title = "Acknowledge the page"
  assignee = "owner"
  due = "15m"
  [[checklists.items]]
  title = "Open a bridge call"
  description = '''SEV1: customers cannot check out. Page the **incident commander**.
SEV2: checkout is slow; @channel is not needed.'''
  [[checklists.items]]
  title = "Tell @channel about it"

[[checklists]]
title = "Resolve"
  [[checklists.items]]
  title = "Find the cause"
  [[checklists.items]]
  title = "Deploy the fix"
  command = "/echo deploying $service"
"""

ONBOARDING = """
title = "Customer onboarding"
private_channel = false
channel_name = "onb {name}"
category = ""

[[checklists]]
title = "Kick-off"
  [[checklists.items]]
  title = "Send the welcome pack"
"""


@dataclass
class Person:
    name: str
    id: str
    token: str
    api: Api
    events: list[dict[str, Any]] = field(default_factory=list)
    _ws_task: asyncio.Task[Any] | None = None
    _ws_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _new_event: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def command(self, channel_id: str, text: str) -> tuple[int, Any]:
        status, body, _ = await self.api.post("/commands/execute", {"channel_id": channel_id, "command": text})
        return status, body

    async def click(self, post_id: str, action_id: str) -> tuple[int, Any]:
        status, body, _ = await self.api.post(f"/posts/{post_id}/actions/{action_id}", {})
        return status, body

    async def submit_dialog(self, dialog: dict[str, Any], channel_id: str, team_id: str,
                            submission: dict[str, Any], cancelled: bool = False) -> tuple[int, Any]:
        status, body, _ = await self.api.post("/actions/dialogs/submit", {
            "url": dialog["url"], "callback_id": dialog["dialog"].get("callback_id", ""),
            "state": dialog["dialog"].get("state", ""), "channel_id": channel_id, "team_id": team_id,
            "submission": submission, "cancelled": cancelled})
        return status, body

    async def listen(self, base_url: str) -> None:
        """Open a WebSocket as this person, as the web app does, and collect every event."""
        url = base_url.replace("http", "ws", 1) + "/api/v4/websocket"

        async def reader() -> None:
            async with self.api.session.ws_connect(url, headers={"Authorization": f"Bearer {self.token}"}) as ws:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(msg.data)
                    if data.get("event") == "hello":
                        self._ws_ready.set()
                    async with self._new_event:
                        self.events.append(data)
                        self._new_event.notify_all()

        self._ws_task = asyncio.create_task(reader())
        await asyncio.wait_for(self._ws_ready.wait(), 5)

    async def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0,
                         since: int = 0) -> dict[str, Any]:
        """The first event (from index `since` on) that satisfies `predicate`, waiting for it if need be."""
        async def find() -> dict[str, Any]:
            async with self._new_event:
                while True:
                    for event in self.events[since:]:
                        if predicate(event):
                            return event
                    await self._new_event.wait()

        return await asyncio.wait_for(find(), timeout)

    def ephemerals(self) -> list[str]:
        out = []
        for e in self.events:
            if e.get("event") == "ephemeral_message":
                out.append(json.loads(e["data"]["post"])["message"])
        return out

    async def close(self) -> None:
        if self._ws_task is not None:
            self._ws_task.cancel()
            await asyncio.gather(self._ws_task, return_exceptions=True)


@dataclass
class World:
    sb: Sandbox
    bot: BotApp
    admin: Api
    team_id: str
    town_square: str
    people: dict[str, Person]
    bot_user_id: str
    clock: FakeClock
    playbooks_dir: Path
    browsers: list[aiohttp.ClientSession] = field(default_factory=list)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    async def settle(self) -> None:
        """Wait for the bot's follow-up work (run start, overview refresh) to finish."""
        assert self.bot.ctx is not None
        await self.bot.ctx.tasks.drain()

    async def posts(self, channel_id: str, who: str = "alice") -> list[dict[str, Any]]:
        """The channel's posts, oldest first, as a member reads them."""
        status, body, _ = await self.people[who].api.get(f"/channels/{channel_id}/posts?per_page=200")
        assert status == 200, body
        return [body["posts"][pid] for pid in reversed(body["order"])]

    async def post(self, post_id: str, who: str = "alice") -> dict[str, Any]:
        status, body, _ = await self.people[who].api.get(f"/posts/{post_id}")
        assert status == 200, body
        return body

    async def wait_post(self, post_id: str, predicate: Callable[[dict[str, Any]], bool], who: str = "alice",
                        timeout: float = 5.0) -> dict[str, Any]:
        """The post once `predicate` holds for it: now, or after a `post_edited` event that makes it so.

        Two concurrent clicks' updates may be applied by Mattermost out of order; the bot then mends
        the post when it sees the stale `post_edited`, so the final state arrives as one more edit.
        """
        since = len(self.people[who].events)  # before the read, so no later edit can slip past
        current = await self.post(post_id, who)
        if predicate(current):
            return current

        def edited(event: dict[str, Any]) -> bool:
            if event.get("event") != "post_edited":
                return False
            post = json.loads(event["data"]["post"])
            return post["id"] == post_id and predicate(post)

        event = await self.people[who].wait_event(edited, timeout, since=since)
        return json.loads(event["data"]["post"])

    async def channel_by_name(self, name: str) -> dict[str, Any]:
        status, body, _ = await self.admin.get(f"/teams/{self.team_id}/channels/name/{name}")
        assert status == 200, body
        return body

    async def run_json(self, run_id: str, who: str = "alice") -> tuple[int, Any]:
        status, body, _ = await self.bot_api(who).get(f"/api/v0/runs/{run_id}")  # checked against the API's spec
        return status, body

    def bot_api(self, who: str | None = "alice") -> BotApi:
        """The bot's API as `who` (a person's name, "admin" for the system admin, None for no token); every
        exchange is checked against bot/openapi.json."""
        token = None if who is None else self.admin.token if who == "admin" else self.people[who].token
        return BotApi(self.admin.session, self.bot.url, token)

    async def browser(self, who: str = "alice") -> aiohttp.ClientSession:
        """A cookie-keeping HTTP client signed in to the bot's web view as `who`, through a one-time sign-in
        link as `/playbook dashboard` hands out (tests/browser sign in through the OAuth pages instead).
        Closed with the world."""
        assert self.bot.ctx is not None
        link = await signin.new_link(self.bot.ctx, self.people[who].id)
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: 127.0.0.1 hosts
        self.browsers.append(session)
        async with session.post(link, allow_redirects=False, headers={"Origin": self.bot.url}) as response:
            assert response.status == 303, await response.text()
        return session

    async def runs_json(self, who: str = "alice", query: str = "") -> tuple[int, Any]:
        status, body, _ = await self.bot_api(who).get(f"/api/v0/runs{query}")
        return status, body


async def make_user(admin: Api, team_id: str, name: str) -> tuple[str, str]:
    status, user, _ = await admin.post("/users", {"username": name, "email": f"{name}@example.com",
                                                  "password": "Password1!"})
    assert status == 201, user
    status, body, _ = await admin.post(f"/teams/{team_id}/members", {"team_id": team_id, "user_id": user["id"]})
    assert status == 201, body
    status, tok, _ = await admin.post(f"/users/{user['id']}/tokens", {"description": "test"})
    assert status == 200, tok
    return user["id"], tok["token"]


@pytest.fixture
def world_options() -> dict[str, Any]:
    """Override in a test module to change how the world is built (`env`: more BOT_* settings)."""
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT, "onboarding": ONBOARDING}}


@pytest.fixture
async def world(tmp_path: Path, world_options: dict[str, Any]) -> AsyncIterator[World]:
    async with Sandbox(admin_token="admintoken", config=sandbox_config(),
                       validate=True, allow_internal=LOOPBACK) as sb, \
            aiohttp.ClientSession() as session:
        admin = Api(session, sb.url, sb.admin_token)
        status, team, _ = await admin.post("/teams", {"name": "eng", "display_name": "Engineering", "type": "O"})
        assert status == 201, team
        people: dict[str, Person] = {}
        for name in ("alice", "bob", "carol", "dave"):
            uid, token = await make_user(admin, team["id"], name)
            people[name] = Person(name, uid, token, Api(session, sb.url, token))
        status, bot, _ = await admin.post("/bots", {"username": "playbooks", "display_name": "Playbooks"})
        assert status == 201, bot
        bot_id = bot["user_id"]
        await admin.post(f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": bot_id})
        status, body, _ = await admin.put(f"/users/{bot_id}/roles", {"roles": world_options["bot_roles"]})
        assert status == 200, body
        if world_options.get("team_admin"):
            # A plain bot may register slash commands once it is a team admin.
            status, body, _ = await admin.put(f"/teams/{team['id']}/members/{bot_id}/schemeRoles",
                                              {"scheme_admin": True, "scheme_user": True})
            assert status == 200, body
        status, tok, _ = await admin.post(f"/users/{bot_id}/tokens", {"description": "bot"})
        assert status == 200, tok
        status, town, _ = await admin.get(f"/teams/{team['id']}/channels/name/town-square")
        assert status == 200, town

        pb_dir = tmp_path / "playbooks"
        pb_dir.mkdir()
        for pid, text in world_options["playbooks"].items():
            (pb_dir / f"{pid}.toml").write_text(textwrap.dedent(text))
        settings = load_settings(tmp_path / "absent.toml", env={
            "BOT_MATTERMOST_URL": sb.url, "BOT_MATTERMOST_TOKEN": tok["token"],
            "BOT_SERVER_LISTEN": "127.0.0.1:0", "BOT_SERVER_PUBLIC_URL": "http://127.0.0.1:0",
            "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/bot.db", "BOT_PLAYBOOKS_DIR": str(pb_dir),
            **world_options.get("env", {}),
        })
        clock = FakeClock(_now_ms())
        app = BotApp(settings, clock=clock)
        await app.start()
        w = World(sb, app, admin, team["id"], town["id"], people, bot_id, clock, pb_dir)
        try:
            for person in people.values():
                await person.listen(sb.url)
            yield w
        finally:
            for person in people.values():
                await person.close()
            for browser in w.browsers:
                await browser.close()
            await app.stop()
    # Every call the bot (and the people) made must have been valid API v4, by the OpenAPI file.
    assert_no_violations(sb.state)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
