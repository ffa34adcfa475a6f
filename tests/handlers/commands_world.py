"""The real bot core (BotApp: dispatcher, features, storage, templates) over the fake gateway: a world for
handler tests, as errbot's test backend runs the real core on in-memory I/O. No WebSocket listener.

`env.type("alice", "/playbook check 1.2")` dispatches as Mattermost would (split, route, reply) and
returns the reply's text; follow-up work is drained so posts can be read back at once.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import BotApp
from bot.clock import FakeClock
from bot.config import load_settings
from bot.context import Context
from bot.models import MMChannel, MMUser
from bot.router import Dispatcher, Ephemeral, SlashCommand, split_args
from handlers.runs import execute_run, prepare_run
from storage import runs
from storage.db import Database, make_engine, migrate
from storage.runs import RunView
from tests.e2e.conftest import INCIDENT, ONBOARDING
from tests.fakes import FakeGateway

# Bots started by make_env in the current test; tests/handlers/conftest.py stops them afterwards.
RUNNING: list[BotApp] = []


@dataclass
class Env:
    gw: FakeGateway
    app: BotApp
    ctx: Context
    dispatcher: Dispatcher
    team_id: str
    town: MMChannel
    users: dict[str, MMUser]
    clock: FakeClock

    async def type(self, who: str, text: str, channel_id: str | None = None) -> str:
        user = self.users[who]
        channel = channel_id or self.town.id
        body = text.removeprefix("/playbook").strip()
        cmd = SlashCommand(user.id, user.username, channel, "", self.team_id, "eng", "/playbook", body,
                           args=split_args(body))
        self.clock.advance(1)  # events of successive commands keep their order on the timeline
        reply = await self.dispatcher.command(cmd, self.ctx)
        await self.ctx.tasks.drain()
        assert isinstance(reply, Ephemeral), reply
        return reply.text

    async def start(self, playbook: str = "incident", name: str = "Database down", who: str = "alice",
                    summary: str = "") -> RunView:
        plan = prepare_run(self.ctx, self.ctx.playbooks[playbook], name, summary, self.users[who].id,
                           self.team_id, self.town.id)
        outcome = await execute_run(self.ctx, plan)
        await self.ctx.tasks.drain()
        assert outcome.run_id, outcome
        return await self.view(outcome.run_id)

    async def view(self, run_id: str) -> RunView:
        view = await self.ctx.db.run(runs.load_view, run_id, True)
        assert view is not None
        return view


async def make_env(tmp_path: Path, playbooks: dict[str, str] | None = None) -> Env:
    gw = FakeGateway()
    team = gw.add_team("eng", members=[gw.bot_id])
    users = {name: gw.add_user(name, teams=[team.id]) for name in ("alice", "bob", "carol", "dave")}
    users["root"] = gw.add_user("root", roles="system_user system_admin", teams=[team.id])
    users["outsider"] = gw.add_user("outsider")
    town = await gw.create_channel(team.id, "town-square", "Town Square", private=False)
    for user in users.values():
        if (team.id, user.id) in gw.world.team_members:
            await gw.add_channel_member(town.id, user.id)
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for pid, text in (playbooks or {"incident": INCIDENT, "onboarding": ONBOARDING}).items():
        (folder / f"{pid}.toml").write_text(textwrap.dedent(text))
    settings = load_settings(tmp_path / "absent.toml", env={
        "BOT_MATTERMOST_URL": "http://mattermost.test", "BOT_MATTERMOST_TOKEN": "bottoken",
        "BOT_SECURITY_SECRET": "0123456789abcdef0123", "BOT_SERVER_LISTEN": "127.0.0.1:0",
        "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/bot.db", "BOT_PLAYBOOKS_DIR": str(folder),
    })
    engine = make_engine(settings.storage.url)
    migrate(engine)
    clock = FakeClock()
    app = await BotApp(settings, gateway=gw, clock=clock, database=Database(engine), listener_factory=False).start()
    RUNNING.append(app)
    assert not app.ctx.playbook_errors, app.ctx.playbook_errors
    return Env(gw, app, app.ctx, app.dispatcher, team.id, town, users, clock)


def item_states(view: RunView) -> list[list[str]]:
    return [[i.state for i in items] for _, items in view.checklists]


def events(view: RunView, kind: str) -> list[Any]:
    return [e for e in view.timeline if e.type == kind]
